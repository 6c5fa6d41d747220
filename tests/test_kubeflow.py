"""Kubeflow: the compiled specs, validated without a cluster, and the kfp client against a fake API server."""

from __future__ import annotations

import json
import socket

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from pipeline.cli import main
from tests.kfp_server import FakeKubeflow
from tests.test_pipeline_e2e import ALL_NODES

IMAGE = "registry.example.com/penguin-tfx:1.0"
OUTPUT_ROOT = "gs://bucket/penguin"
# The local pipeline's nodes, with the served-model baseline in place of the Resolver.
COMPONENTS = ALL_NODES - {"latest_blessed_model_resolver"} | {"served_baseline"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    from pipeline.kubeflow import compile_pipeline
    from pipeline.tasks import task_config

    config = task_config("penguin_species", output_root=OUTPUT_ROOT, train_steps=250)
    written = compile_pipeline(config, str(tmp_path_factory.mktemp("compiled")), image=IMAGE)
    spec = json_format.ParseDict(
        yaml.safe_load(written["spec"].read_text()),
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
    assert depends["CsvExampleGen"] == set()
    assert depends["DataGate"] == {"ExampleValidator", "ImportSchemaGen"}
    assert depends["DriftGate"] == {"StatisticsGen", "DataGate"}
    assert depends["Transform"] == {"CsvExampleGen", "DriftGate"}
    assert depends["Trainer"] == {"Transform", "DriftGate"}
    assert depends["Evaluator"] == {"CsvExampleGen", "Trainer", "served_baseline"}
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
    assert task_parameters(spec, "CsvExampleGen")["input_base"].component_input_parameter == "data_root"
    assert task_parameters(spec, "Trainer")["train_args"].component_input_parameter == "train_args"
    defaults = json_format.MessageToDict(job.runtime_config)["parameterValues"]
    assert defaults["data_root"] == f"{OUTPUT_ROOT}/data/penguin_species"
    assert json.loads(defaults["train_args"]) == {"num_steps": 250}


def test_files_and_directories_point_where_the_container_and_cluster_see_them(compiled):
    spec, _ = compiled
    schema_file = task_parameters(spec, "ImportSchemaGen")["schema_file"].runtime_value.constant
    assert schema_file.string_value == "/pipeline/schemas/penguins/schema.pbtxt"
    serving_dir = task_parameters(spec, "served_baseline")["serving_dir"].runtime_value.constant
    assert serving_dir.string_value == f"{OUTPUT_ROOT}/serving_model"
    assert spec.pipeline_info.name == "penguin-species"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kubeflow_args(tmp_path, *extra):
    return ["--output-root", OUTPUT_ROOT, "--compiled-dir", str(tmp_path), "--image", IMAGE, *extra]


def test_submit_uploads_then_runs_and_a_second_submit_adds_a_version(tmp_path, capsys):
    with FakeKubeflow() as server:
        assert main(["submit", "--host", server.url, *kubeflow_args(tmp_path, "--train-steps", "120")]) == 0
        (upload,) = server.calls("POST", "/pipelines/upload")
        assert upload["query"]["name"] == ["penguin-species"]
        assert b"PIPELINE DEFINITION" in upload["body"]  # the YAML spec, as a multipart file
        (run,) = server.calls("POST", "/runs")
        body = json.loads(run["body"])
        assert body["pipeline_spec"]["pipelineInfo"]["name"] == "penguin-species"
        parameters = body["runtime_config"]["parameters"]
        assert json.loads(parameters["train_args"]) == {"num_steps": 120}
        assert parameters["data_root"] == f"{OUTPUT_ROOT}/data/penguin_species"
        assert "started run run-1" in capsys.readouterr().out

        assert main(["submit", "--host", server.url, *kubeflow_args(tmp_path)]) == 0
        assert len(server.calls("POST", "/pipelines/upload")) == 1
        (version,) = server.calls("POST", "/pipelines/upload_version")
        assert version["query"]["pipelineid"] == ["pipeline-1"]


def test_schedule_creates_a_recurring_run_with_the_cron_expression(tmp_path, capsys):
    with FakeKubeflow() as server:
        argv = ["schedule", "--host", server.url, "--cron", "0 0 3 * * *", *kubeflow_args(tmp_path)]
        assert main(argv) == 0
        (recurring,) = server.calls("POST", "/recurringruns")
        body = json.loads(recurring["body"])
        assert body["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *"
        assert body["experiment_id"] == "experiment-1"
        assert body["pipeline_spec"]["root"]["inputDefinitions"]["parameters"].keys() == {
            "data_root",
            "train_args",
        }
        assert "Recurring run recurring-1 on '0 0 3 * * *'" in capsys.readouterr().out


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
    data = tmp_path / "data"
    for span in (1, 2):
        (data / f"span-{span}").mkdir(parents=True)
    with FakeKubeflow() as server:
        base = ["--host", server.url, "--data-root", str(data), "--spans", *kubeflow_args(tmp_path)]
        assert main(["submit", *base]) == 0
        assert main(["schedule", "--cron", "0 0 * * * *", *base]) == 0
        run = json.loads(server.calls("POST", "/runs")[0]["body"])["pipeline_spec"]
        recurring = json.loads(server.calls("POST", "/recurringruns")[0]["body"])["pipeline_spec"]
    for spec in (run, recurring):
        assert "span-{SPAN}/*" in example_gen_parameter(spec, "input_config")
    # submit: the newest span now, as a static range; the schedule: whatever is newest at run time.
    assert json.loads(example_gen_parameter(run, "range_config")) == {
        "static_range": {"start_span_number": 2, "end_span_number": 2}
    }
    assert "range_config" not in recurring["root"]["dag"]["tasks"]["CsvExampleGen"]["inputs"]["parameters"]
