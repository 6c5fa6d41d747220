"""Kubeflow: the compiled specs, the kfp client against a local API server (authentication, namespaces,
pipeline versions), Vertex AI's client against a local endpoint. The compiled pipeline is executed the way
KFP and Vertex execute it in tests/test_kubeflow_launcher.py."""

from __future__ import annotations

import json
import socket

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from pipeline.cli import main
from tests.kfp_launcher import argo_name_violations, load_spec, platform_spec
from tests.kfp_server import FakeKubeflow, uploaded_file
from tests.test_pipeline_e2e import ALL_NODES
from tests.vertex_server import FakeVertex

IMAGE = "registry.example.com/penguin-tfx:1.0"
OUTPUT_ROOT = "gs://bucket/penguin"
# The local pipeline's nodes, with the served-model baseline in place of the Resolver, and the data's
# fingerprint before ExampleGen.
COMPONENTS = ALL_NODES - {"latest_blessed_model_resolver"} | {"ServedBaseline", "DataFingerprint"}
UNCACHED = {"ServedBaseline", "DataFingerprint"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    from pipeline.kubeflow.compiler import compile_pipeline
    from pipeline.tasks import task_config

    config = task_config("penguin_species", output_root=OUTPUT_ROOT, train_steps=250)
    written = compile_pipeline(config, str(tmp_path_factory.mktemp("compiled")), image=IMAGE)
    spec = json_format.ParseDict(
        load_spec(written["spec"]),
        pipeline_spec_pb2.PipelineSpec(),
        ignore_unknown_fields=False,
    )
    job = json_format.ParseDict(json.loads(written["job"].read_text()), pipeline_spec_pb2.PipelineJob())
    return spec, job


def task_parameters(spec, task: str) -> dict:
    return spec.root.dag.tasks[task].inputs.parameters


def test_one_task_per_component_with_the_dependencies_of_the_dag(compiled):
    spec, _ = compiled
    tasks = spec.root.dag.tasks
    assert set(tasks) == COMPONENTS
    depends = {name: set(task.dependent_tasks) for name, task in tasks.items()}
    assert depends["DataFingerprint"] == set()
    assert depends["CsvExampleGen"] == {"DataFingerprint"}
    assert depends["DataGate"] == {"ExampleValidator", "ImportSchemaGen", "StatisticsGen"}
    assert depends["DriftGate"] == {"StatisticsGen", "DataGate"}
    assert depends["Transform"] == {"CsvExampleGen", "DriftGate"}
    assert depends["Trainer"] == {"Transform", "DriftGate"}
    assert depends["Evaluator"] == {"CsvExampleGen", "Trainer", "ServedBaseline", "DriftGate"}
    assert depends["Pusher"] == {"Evaluator", "ServingCheck"}
    # The serving check and the push run only for a blessed model.
    for gated in ("ServingCheck", "Pusher"):
        assert "blessed" in tasks[gated].trigger_policy.condition


def test_every_task_runs_the_project_image_and_none_needs_a_vertex_only_resolver(compiled):
    spec, _ = compiled
    executors = json_format.MessageToDict(spec.deployment_spec)["executors"]
    assert len(executors) == len(COMPONENTS)
    for name, executor in executors.items():
        assert set(executor) == {"container"}, name
        assert executor["container"]["image"] == IMAGE


def test_data_root_and_train_steps_are_runtime_parameters(compiled):
    spec, job = compiled
    assert set(spec.root.input_definitions.parameters) == {"data_root", "train_args"}
    for task in ("CsvExampleGen", "DataFingerprint"):
        assert task_parameters(spec, task)["input_base"].component_input_parameter == "data_root"
    assert task_parameters(spec, "Trainer")["train_args"].component_input_parameter == "train_args"
    defaults = json_format.MessageToDict(job.runtime_config)["parameterValues"]
    assert defaults["data_root"] == f"{OUTPUT_ROOT}/data/penguin_species"
    assert json.loads(defaults["train_args"]) == {"num_steps": 250}


def test_files_and_directories_point_where_the_container_and_cluster_see_them(compiled):
    spec, job = compiled
    schema_file = task_parameters(spec, "ImportSchemaGen")["schema_file"].runtime_value.constant
    assert schema_file.string_value == "/pipeline/schemas/penguins/schema.pbtxt"
    serving_dir = task_parameters(spec, "ServedBaseline")["serving_dir"].runtime_value.constant
    assert serving_dir.string_value == f"{OUTPUT_ROOT}/serving_model"
    assert spec.pipeline_info.name == "penguin-species"
    # The pipeline root is in both: KFP reads defaultPipelineRoot, Vertex the job's output directory.
    assert spec.default_pipeline_root == f"{OUTPUT_ROOT}/pipeline"
    assert job.runtime_config.gcs_output_directory == f"{OUTPUT_ROOT}/pipeline"
    # The Trainer's resume checkpoints live outside any one run's directory.
    trainer = json.loads(
        task_parameters(spec, "Trainer")["custom_config"].runtime_value.constant.string_value
    )
    assert trainer["checkpoint_root"] == f"{OUTPUT_ROOT}/pipeline/Trainer/checkpoints"


def test_caching_stays_on_except_for_the_tasks_that_must_look_anew_every_run(compiled):
    spec, _ = compiled
    cached = {name for name, task in spec.root.dag.tasks.items() if task.caching_options.enable_cache}
    assert cached == COMPONENTS - UNCACHED
    # ExampleGen's cache key holds the fingerprint of the data, from the task that computed it this run.
    source = task_parameters(spec, "CsvExampleGen")["data_fingerprint"].task_output_parameter
    assert (source.producer_task, source.output_parameter_key) == ("DataFingerprint", "fingerprint")
    assert "fingerprint" in spec.components["DataFingerprint"].output_definitions.parameters


def test_tasks_request_cpu_and_memory_and_the_heavy_ones_more(compiled):
    spec, _ = compiled
    executors = json_format.MessageToDict(spec.deployment_spec)["executors"]
    resources = {name.removesuffix("_executor"): e["container"]["resources"] for name, e in executors.items()}
    for heavy in ("Transform", "Trainer", "Evaluator"):
        assert resources[heavy] == {"cpuLimit": 2.0, "memoryLimit": 4.0}
    assert resources["StatisticsGen"] == {"cpuLimit": 1.0, "memoryLimit": 2.0}


@pytest.mark.parametrize(
    "task, extra",
    [
        ("penguin_species", ["--tune"]),
        ("penguin_body_mass", []),
        ("penguin_multi", []),
        ("digits", []),
        ("digits_similarity", []),
    ],
)
def test_every_task_name_is_an_argo_dag_task_name(task, extra, tmp_path):
    """KFP's Argo compiler names each Argo DAG task after the IR task (and `<name>-driver`)."""
    assert main(["compile", "--task", task, *extra, *kubeflow_args(tmp_path)]) == 0
    spec = load_spec(next(tmp_path.glob("*/pipeline.yaml")))
    assert argo_name_violations(spec) == []
    assert len(spec["root"]["dag"]["tasks"]) >= len(COMPONENTS)


@pytest.mark.parametrize(
    "image, refused",
    [
        ("registry.example.com/penguin-tfx:latest", "the mutable tag 'latest'"),
        ("registry.example.com/penguin-tfx", "no tag"),
        ("localhost:5000/penguin-tfx", "no tag"),
    ],
)
def test_a_mutable_image_is_refused_unless_allowed(image, refused, tmp_path, capsys):
    assert (
        main(["compile", "--image", image, "--output-root", OUTPUT_ROOT, "--compiled-dir", str(tmp_path)])
        == 2
    )
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: image {image} has {refused}")
    assert "@sha256:" in line and "--allow-mutable-image" in line
    assert not list(tmp_path.iterdir())
    argv = ["compile", "--image", image, "--allow-mutable-image", "--output-root", OUTPUT_ROOT]
    assert main([*argv, "--compiled-dir", str(tmp_path)]) == 0


def test_an_image_pinned_by_digest_compiles():
    from pipeline.kubeflow.compiler import check_image

    check_image("registry.example.com/penguin-tfx@sha256:" + "0" * 64)
    check_image("registry.example.com/penguin-tfx:3f2c1ab")


def test_a_users_data_compiles_with_its_schema_label_and_gate(tmp_path):
    """compile takes the options of `run`: the user's schema (inside the project, so in the image), the
    label, the gate; the cluster's data is not read here."""
    argv = [
        "compile",
        "--data-root",
        "gs://bucket/data/my_penguins",
        "--schema",
        "schemas/penguin_body_mass/schema.pbtxt",
        "--label",
        "body_mass_g",
        "--max-rmse",
        "400",
        *kubeflow_args(tmp_path),
    ]
    assert main(argv) == 0
    spec = load_spec(tmp_path / "my-penguins" / "pipeline.yaml")
    tasks = spec["root"]["dag"]["tasks"]
    schema_file = tasks["ImportSchemaGen"]["inputs"]["parameters"]["schema_file"]["runtimeValue"]["constant"]
    assert schema_file == "/pipeline/schemas/penguin_body_mass/schema.pbtxt"
    assert spec["root"]["inputDefinitions"]["parameters"]["data_root"]["defaultValue"] == (
        "gs://bucket/data/my_penguins"
    )
    labels = json.loads(tasks["Trainer"]["inputs"]["parameters"]["custom_config"]["runtimeValue"]["constant"])
    assert labels["labels"] == [["body_mass_g", "regression"]]
    eval_config = tasks["Evaluator"]["inputs"]["parameters"]["eval_config"]["runtimeValue"]["constant"]
    assert '"upper_bound": 400.0' in eval_config


def test_settings_by_name_reach_the_compiled_trainer_and_are_recorded_beside_the_spec(tmp_path, capsys):
    """A user's Trainer settings from a file and --set: in the Trainer's custom_config of the spec (which
    the cluster's cache key includes) and in the configuration written beside it, nowhere else."""
    (tmp_path / "settings.yaml").write_text("trainer:\n  batch_size: 64\n  hidden_units: [32, 16]\n")
    argv = ["compile", "--config", str(tmp_path / "settings.yaml"), "--set", "trainer.learning_rate=0.003"]
    assert main([*argv, *kubeflow_args(tmp_path)]) == 0
    spec = load_spec(tmp_path / "penguin-species" / "pipeline.yaml")
    tasks = spec["root"]["dag"]["tasks"]
    trainer = json.loads(
        tasks["Trainer"]["inputs"]["parameters"]["custom_config"]["runtimeValue"]["constant"]
    )
    chosen = trainer["trainer"]
    assert (chosen["learning_rate"], chosen["batch_size"], chosen["hidden_units"]) == (0.003, 64, [32, 16])
    recorded = yaml.safe_load((tmp_path / "penguin-species" / "config.yaml").read_text())
    assert recorded["trainer"]["learning_rate"] == 0.003 and recorded["output_root"] == OUTPUT_ROOT
    assert "config.yaml" in capsys.readouterr().out
    assert "output_root" not in json.dumps(spec["root"]["dag"]["tasks"]["Trainer"])  # the tree is no argument


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--schema", "/tmp/elsewhere/schema.pbtxt"],
            "schema file /tmp/elsewhere/schema.pbtxt does not exist",
        ),
        (["--label", "body_mass_g"], "pass --max-rmse for the regression label 'body_mass_g'"),
        (["--task-resources", "Trainer=cpu:two"], "could not convert string to float"),
        (
            ["--beam-workers", "2", "--beam-arg=--runner=DataflowRunner"],
            "--beam-workers sets up Beam's local",
        ),
    ],
)
def test_bad_compile_options_are_one_line_errors(argv, message, tmp_path, capsys):
    base = ["compile", "--data-root", "gs://bucket/d", "--schema", "schemas/penguins/schema.pbtxt"]
    assert main([*base, *argv, *kubeflow_args(tmp_path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert message in line


def test_a_schema_outside_the_image_is_refused(tmp_path, capsys):
    schema = tmp_path / "schema.pbtxt"
    schema.write_text((REPO_SCHEMAS / "penguins" / "schema.pbtxt").read_text())
    argv = ["compile", "--data-root", "gs://bucket/d", "--schema", str(schema), "--label", "species"]
    assert main([*argv, *kubeflow_args(tmp_path / "out")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {schema} is outside the project, so the image does not hold it")


def test_task_resources_and_gpus_reach_the_containers(tmp_path):
    argv = ["compile", "--task-resources", "Trainer=cpu:8,memory:30,gpus:2,gpu_type:NVIDIA_L4"]
    argv += ["--task-resources", "StatisticsGen=cpu:4,memory:8"]
    assert main([*argv, *kubeflow_args(tmp_path)]) == 0
    spec = load_spec(tmp_path / "penguin-species" / "pipeline.yaml")
    executors = spec["deploymentSpec"]["executors"]
    assert executors["Trainer_executor"]["container"]["resources"] == {
        "cpuLimit": 8.0,
        "memoryLimit": 30.0,
        "accelerator": {"type": "NVIDIA_L4", "count": "2"},
    }
    assert executors["StatisticsGen_executor"]["container"]["resources"] == {
        "cpuLimit": 4.0,
        "memoryLimit": 8.0,
    }
    assert executors["Transform_executor"]["container"]["resources"] == {"cpuLimit": 2.0, "memoryLimit": 4.0}


REPO_SCHEMAS = __import__("pipeline.config", fromlist=["REPO_ROOT"]).REPO_ROOT / "schemas"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kubeflow_args(tmp_path, *extra):
    return ["--output-root", OUTPUT_ROOT, "--compiled-dir", str(tmp_path), "--image", IMAGE, *extra]


def test_submit_uploads_a_version_and_runs_that_version(tmp_path, capsys):
    with FakeKubeflow() as server:
        assert main(["submit", "--host", server.url, *kubeflow_args(tmp_path, "--train-steps", "120")]) == 0
        (upload,) = server.calls("POST", "/pipelines/upload")
        assert upload["query"]["name"] == ["penguin-species"]
        assert b"PIPELINE DEFINITION" in upload["body"]  # the YAML spec, as a multipart file
        (run,) = server.calls("POST", "/runs")
        body = json.loads(run["body"])
        # The run is of the uploaded version, not of a second copy of the package.
        assert body["pipeline_version_reference"] == {
            "pipeline_id": "pipeline-1",
            "pipeline_version_id": "version-pipeline-1-1",
        }
        assert "pipeline_spec" not in body
        config = body["runtime_config"]
        assert config["pipeline_root"] == f"{OUTPUT_ROOT}/pipeline"
        assert json.loads(config["parameters"]["train_args"]) == {"num_steps": 120}
        assert config["parameters"]["data_root"] == f"{OUTPUT_ROOT}/data/penguin_species"
        out = capsys.readouterr().out
        assert "Uploaded pipeline pipeline-1 version version-pipeline-1-1; started run run-1" in out

        assert main(["submit", "--host", server.url, *kubeflow_args(tmp_path)]) == 0
        assert len(server.calls("POST", "/pipelines/upload")) == 1
        (version,) = server.calls("POST", "/pipelines/upload_version")
        assert version["query"]["pipelineid"] == ["pipeline-1"]
        second = json.loads(server.calls("POST", "/runs")[1]["body"])
        assert second["pipeline_version_reference"]["pipeline_version_id"] == "version-pipeline-1-2"


def test_a_pipeline_root_of_its_own_goes_into_both_files_and_every_run(tmp_path):
    root = "gs://artifacts-bucket/kfp-root"
    with FakeKubeflow() as server:
        argv = ["submit", "--host", server.url, "--pipeline-root", root + "/", *kubeflow_args(tmp_path)]
        assert main(argv) == 0
        (run,) = server.calls("POST", "/runs")
    assert json.loads(run["body"])["runtime_config"]["pipeline_root"] == root
    spec = load_spec(tmp_path / "penguin-species" / "pipeline.yaml")
    job = json.loads((tmp_path / "penguin-species" / "pipeline_job.json").read_text())
    assert spec["defaultPipelineRoot"] == job["runtimeConfig"]["gcsOutputDirectory"] == root
    trainer = spec["root"]["dag"]["tasks"]["Trainer"]["inputs"]["parameters"]["custom_config"]
    assert json.loads(trainer["runtimeValue"]["constant"])["checkpoint_root"] == f"{root}/Trainer/checkpoints"


def test_schedule_recurs_on_the_pipelines_latest_version_with_the_cron_expression(tmp_path, capsys):
    with FakeKubeflow() as server:
        argv = ["schedule", "--host", server.url, "--cron", "0 0 3 * * *", *kubeflow_args(tmp_path)]
        assert main(argv) == 0
        assert len(server.calls("POST", "/pipelines/upload")) == 1
        (recurring,) = server.calls("POST", "/recurringruns")
        body = json.loads(recurring["body"])
        assert body["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *"
        assert int(body["max_concurrency"]) == 1
        assert body["mode"] == "ENABLE"
        assert body["experiment_id"] == "experiment-1"
        # No version: the backend runs the pipeline's latest version at each trigger.
        assert body["pipeline_version_reference"] == {"pipeline_id": "pipeline-1"}
        assert body["runtime_config"]["pipeline_root"] == f"{OUTPUT_ROOT}/pipeline"
        assert set(body["runtime_config"]["parameters"]) == {"data_root", "train_args"}
        out = capsys.readouterr().out
        assert "recurring run recurring-1 of the pipeline's latest version on '0 0 3 * * *'" in out


def test_a_repeated_schedule_replaces_the_recurring_run_after_creating_the_new_one(tmp_path, capsys):
    with FakeKubeflow() as server:
        other = ["schedule", "--host", server.url, "--cron", "0 0 1 * * *", "--task", "penguin_body_mass"]
        assert main([*other, *kubeflow_args(tmp_path / "other")]) == 0  # another pipeline's schedule
        argv = ["schedule", "--host", server.url, *kubeflow_args(tmp_path)]
        assert main([*argv, "--cron", "0 0 3 * * *"]) == 0
        assert main(["submit", "--host", server.url, *kubeflow_args(tmp_path)]) == 0  # new code
        assert main([*argv, "--cron", "0 30 4 * * *"]) == 0
        # One recurring run of each pipeline: the replaced one deleted, the other pipeline's kept.
        assert sorted(server.recurring_runs) == ["recurring-1", "recurring-3"]
        assert server.recurring_runs["recurring-3"]["trigger"]["cron_schedule"]["cron"] == "0 30 4 * * *"
        calls = [r for r in server.requests if "recurringruns" in r["path"]]
        order = [(r["method"], r["path"].rsplit("/", 1)[1]) for r in calls]
        create = order.index(("POST", "recurringruns"), order.index(("GET", "recurringruns"), 4))
        assert order[create:] == [("POST", "recurringruns"), ("DELETE", "recurring-2")]
        assert "; replaced recurring-2" in capsys.readouterr().out


def test_a_token_and_a_namespace_reach_every_request(tmp_path, capsys, monkeypatch):
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    with FakeKubeflow(token="secret-token", namespace="team-a") as server:
        argv = ["submit", "--host", server.url, "--namespace", "team-a", "--token-file", str(token)]
        assert main([*argv, *kubeflow_args(tmp_path / "c")]) == 0
        api_calls = [r for r in server.requests if not r["path"].endswith("/healthz")]
        assert api_calls and all(r["headers"]["authorization"] == "Bearer secret-token" for r in api_calls)
        assert server.calls("POST", "/pipelines/upload")[0]["query"]["namespace"] == ["team-a"]
        (experiment,) = server.calls("POST", "/experiments")
        assert json.loads(experiment["body"])["namespace"] == "team-a"
        assert len(server.calls("POST", "/runs")) == 1

        # Inside a cluster: Kubeflow's convention, the token file named by KF_PIPELINES_SA_TOKEN_PATH.
        monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(token))
        argv = ["schedule", "--host", server.url, "--namespace", "team-a", "--cron", "0 0 * * * *"]
        assert main([*argv, *kubeflow_args(tmp_path / "c")]) == 0
        assert len(server.calls("POST", "/recurringruns")) == 1


@pytest.mark.parametrize(
    "token, namespace, status",
    [("wrong-token", "team-a", 401), ("secret-token", "team-b", 403)],
)
def test_a_refused_token_or_namespace_is_one_line(token, namespace, status, tmp_path, capsys):
    token_file = tmp_path / "token"
    token_file.write_text(token)
    with FakeKubeflow(token="secret-token", namespace="team-a") as server:
        argv = ["submit", "--host", server.url, "--namespace", namespace, "--token-file", str(token_file)]
        assert main([*argv, *kubeflow_args(tmp_path / "c")]) == 1
        assert not server.calls("POST", "/runs")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(
        f"error: Kubeflow Pipelines at {server.url} refused the credentials (HTTP {status})"
    )
    assert "--token-file" in err[0]


def test_an_unreachable_host_is_a_one_line_error(tmp_path, capsys):
    host = f"http://127.0.0.1:{free_port()}"
    assert main(["submit", "--host", host, *kubeflow_args(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"error: cannot reach Kubeflow Pipelines at {host}")
    assert "kubectl port-forward" in err[0]


def example_gen_parameter(spec: dict, name: str) -> str:
    value = spec["root"]["dag"]["tasks"]["CsvExampleGen"]["inputs"]["parameters"][name]
    return value["runtimeValue"]["constant"]


def test_spans_read_the_newest_at_submit_time_or_when_a_scheduled_run_starts(tmp_path):
    from pipeline.data import write_generated_penguins

    data = tmp_path / "data"
    for span in (1, 2):
        write_generated_penguins(data / f"span-{span}" / "rows.csv", 20, seed=span)
    schema = ["--schema", "schemas/penguins/schema.pbtxt", "--label", "species"]
    with FakeKubeflow() as server:
        base = ["--host", server.url, "--data-root", str(data), *schema, "--spans", *kubeflow_args(tmp_path)]
        assert main(["submit", *base]) == 0
        assert main(["schedule", "--cron", "0 0 * * * *", *base]) == 0
    uploads = server.calls("POST", "/pipelines/upload") + server.calls("POST", "/pipelines/upload_version")
    run_spec, recurring_spec = (next(yaml.safe_load_all(uploaded_file(upload))) for upload in uploads)
    for spec in (run_spec, recurring_spec):
        assert "span-{SPAN}/*" in example_gen_parameter(spec, "input_config")
    # submit: the newest span now, as a static range; the schedule: whatever is newest at run time.
    assert json.loads(example_gen_parameter(run_spec, "range_config")) == {
        "static_range": {"start_span_number": 2, "end_span_number": 2}
    }
    tasks = recurring_spec["root"]["dag"]["tasks"]
    assert "range_config" not in tasks["CsvExampleGen"]["inputs"]["parameters"]


def test_vertex_submit_creates_the_pipeline_job_with_the_service_account_root_and_labels(
    tmp_path, capsys, monkeypatch
):
    with FakeVertex() as server:
        key = server.service_account_key(tmp_path / "key.json", "trainer@my-project.iam.gserviceaccount.com")
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)  # the SDK's bucket check, answered here
        argv = ["submit", "--vertex", "--project", "my-project", "--region", "europe-west4"]
        argv += ["--service-account", "runner@my-project.iam.gserviceaccount.com", "--job-label", "team=ml"]
        argv += ["--api-endpoint", server.url, "--train-steps", "80"]
        assert main([*argv, *kubeflow_args(tmp_path / "c")]) == 0
        (created,) = server.jobs()
        # The pipeline root's bucket did not exist: the SDK created it in the project, for the job's account.
        bucket = server.buckets["bucket"]
        assert (bucket["project"], bucket["location"]) == ("my-project", "europe-west4")
        granted = {b["role"]: b["members"] for b in bucket["iam"]["bindings"]}
        runner = "serviceAccount:runner@my-project.iam.gserviceaccount.com"
        assert (
            runner in granted["roles/storage.objectCreator"]
            and runner in granted["roles/storage.objectViewer"]
        )
    assert created["path"] == "/v1/projects/my-project/locations/europe-west4/pipelineJobs"
    # Signed by the service account's key, as Google's clients authenticate a service account.
    assert server.authorized(created)
    assert created["identity"] == "trainer@my-project.iam.gserviceaccount.com"
    job = json.loads(created["body"])
    assert job["serviceAccount"] == "runner@my-project.iam.gserviceaccount.com"
    assert job["labels"]["team"] == "ml"
    assert job["runtimeConfig"]["gcsOutputDirectory"] == f"{OUTPUT_ROOT}/pipeline"
    assert json.loads(job["runtimeConfig"]["parameterValues"]["train_args"]) == {"num_steps": 80}
    assert job["pipelineSpec"]["pipelineInfo"]["name"] == "penguin-species"
    assert "Started Vertex AI pipeline job projects/my-project/locations/europe-west4/pipelineJobs/" in (
        capsys.readouterr().out
    )


def test_vertex_without_credentials_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))  # no gcloud login
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # not on Google Cloud: no metadata server to ask
    argv = ["submit", "--vertex", "--project", "my-project", "--region", "europe-west4"]
    assert main([*argv, *kubeflow_args(tmp_path / "c")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: no Google Cloud credentials found: run `gcloud auth application-default login`, or set "
        "GOOGLE_APPLICATION_CREDENTIALS to a service account's key file"
    ]


def test_submit_needs_a_host_or_vertex(tmp_path, capsys):
    assert main(["submit", *kubeflow_args(tmp_path)]) == 2
    assert "submit needs --host URL (Kubeflow Pipelines) or --vertex" in capsys.readouterr().err


def test_the_inference_path_compiles_with_a_scoring_task_for_each_outcome(tmp_path):
    assert main(["compile", "--inference-data", "gs://bucket/to-score", *kubeflow_args(tmp_path)]) == 0
    spec = load_spec(tmp_path / "penguin-species" / "pipeline.yaml")
    tasks = spec["root"]["dag"]["tasks"]
    assert {"InferenceExampleGen", "InferenceStatisticsGen", "InferenceGate"} <= set(tasks)
    # After a push, the new version scores; after a refused candidate, the served one: two tasks under
    # opposite conditions, since KFP starts no task whose upstream task was skipped.
    pushed, refused = tasks["BatchInference"], tasks["BatchInferenceServed"]
    assert set(pushed["dependentTasks"]) == {"InferenceGate", "Pusher", "Evaluator"}
    assert set(refused["dependentTasks"]) == {"InferenceGate", "Evaluator"}
    blessed = "(inputs.artifacts['_Evaluator.blessing'].artifacts[0].metadata['blessed'] == 1.0)"
    assert (pushed["triggerPolicy"]["condition"], refused["triggerPolicy"]["condition"]) == (
        blessed,
        f"!({blessed})",
    )
    # New files in the inference directory are read at every run: self-hosted KFP's cache key would not see
    # them.
    assert tasks["InferenceExampleGen"]["cachingOptions"] == {"enableCache": False}
    for task in (pushed, refused):
        assert task["cachingOptions"] == {"enableCache": False}
        parameters = task["inputs"]["parameters"]
        assert parameters["data_root"]["runtimeValue"]["constant"] == "gs://bucket/to-score"
        assert parameters["serving_dir"]["runtimeValue"]["constant"].endswith("/serving_model")


def test_an_image_task_scores_its_examples_described_by_the_schema_features_alone(tmp_path):
    assert (
        main(["compile", "--task", "digits", "--inference-data", "gs://b/new", *kubeflow_args(tmp_path)]) == 0
    )
    spec = load_spec(tmp_path / "digits" / "pipeline.yaml")
    tasks = spec["root"]["dag"]["tasks"]
    executor = spec["components"][tasks["InferenceExampleGen"]["componentRef"]["name"]]["executorLabel"]
    container = spec["deploymentSpec"]["executors"][executor]["container"]
    assert "tfx.components.example_gen.import_example_gen.executor.Executor" in json.dumps(container)
    statistics = tasks["InferenceStatisticsGen"]["inputs"]["parameters"]["stats_options_json"]
    options = json.loads(statistics["runtimeValue"]["constant"])
    # The image and its label; an unlabelled image's `file` is carried into the predictions, not described.
    assert options["_feature_allowlist"] == ["image", "label"]


def test_every_task_gets_a_volume_of_its_size_for_the_launchers_downloads(tmp_path):
    """Self-hosted KFP's launcher copies every input artifact into the pod (/gcs/..., /s3/...) before the
    task starts: each task mounts an emptyDir there, in the platform document KFP's driver reads."""
    argv = ["compile", *kubeflow_args(tmp_path), "--task-resources", "Trainer=cpu:2,memory:4,disk:20"]
    assert main(argv) == 0
    path = tmp_path / "penguin-species" / "pipeline.yaml"
    spec, platform = load_spec(path), platform_spec(path)
    json_format.ParseDict({"platforms": {"kubernetes": platform}}, pipeline_spec_pb2.PlatformSpec())
    executors = platform["deploymentSpec"]["executors"]
    assert set(executors) == {component["executorLabel"] for component in spec["components"].values()}
    for label, settings in executors.items():
        (volume,) = settings["emptyDirMounts"]
        assert volume["mountPath"] == "/gcs"
        assert volume["sizeLimit"] == ("20480Mi" if label == "Trainer_executor" else "2048Mi"), label
    # A local root (which Kubeflow does not run) has no platform document.
    local = ["compile", "--output-root", str(tmp_path / "out"), "--compiled-dir", str(tmp_path / "local")]
    assert main([*local, "--image", IMAGE]) == 0
    assert platform_spec(tmp_path / "local" / "penguin-species" / "pipeline.yaml") == {}


def test_every_artifact_is_typed_by_tfxs_own_schema_and_none_by_a_system_title(compiled):
    """Self-hosted KFP's field report: `system.*` titles unknown to TFX's title map. The only one a task
    meets is the driver's `executor-logs` (tests/test_kubeflow_entrypoint.py); every artifact the pipeline
    declares is typed by a TFX instance schema whose title TFX's entrypoint imports."""
    from tfx.orchestration.kubeflow.v2.container.kubeflow_v2_entrypoint_utils import _retrieve_class_path
    from tfx.types import Artifact
    from tfx.utils import import_utils

    spec, _ = compiled
    declared = []
    for component in spec.components.values():
        for definitions in (component.input_definitions.artifacts, component.output_definitions.artifacts):
            declared += [definition.artifact_type for definition in definitions.values()]
    assert declared
    for artifact_type in declared:
        assert artifact_type.WhichOneof("kind") == "instance_schema"
        assert not yaml.safe_load(artifact_type.instance_schema)["title"].startswith("system.")
        assert issubclass(import_utils.import_class_by_path(_retrieve_class_path(artifact_type)), Artifact)
