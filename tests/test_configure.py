"""The configuration builder, with typed requests and no command line: what every command builds."""

from __future__ import annotations

import pytest

from pipeline.config import TaskResources
from pipeline.configure import ConfigError, ConfigRequest, build_config
from tests.conftest import REPO_ROOT, requires_s3
from tests.datasets import write_diabetes

PENGUINS_SCHEMA = "schemas/penguins/schema.pbtxt"


def test_a_local_run_and_a_cluster_compile_of_the_same_request_differ_only_in_where(tmp_path):
    request = ConfigRequest(task="penguin_body_mass", output_root=str(tmp_path), train_steps=120)
    local = build_config(request).config
    cluster = build_config(
        ConfigRequest(task="penguin_body_mass", output_root="gs://bucket/root", train_steps=120, cluster=True)
    ).config
    assert local.output_root == str(tmp_path) and cluster.output_root == "gs://bucket/root"
    assert cluster.pipeline_root == "gs://bucket/root/pipeline"
    assert local.replace(output_root="x", code_fingerprint="") == cluster.replace(
        output_root="x", code_fingerprint=""
    )


def test_a_users_data_on_the_cluster_takes_its_classes_from_the_schema():
    built = build_config(
        ConfigRequest(
            data_root="gs://bucket/data/birds/", schema=PENGUINS_SCHEMA, label="species", cluster=True
        )
    )
    config = built.config
    assert (config.data_root, config.pipeline_name) == ("gs://bucket/data/birds", "birds")
    assert (config.task, config.num_classes) == ("classification", 3)
    assert built.gate.startswith("classification gate on 'species' (3 classes)")


def test_a_local_users_regression_label_is_gated_by_its_spread(tmp_path):
    import pandas as pd

    write_diabetes(tmp_path / "diabetes")
    schema = tmp_path / "schema.pbtxt"
    from pipeline.cli import main

    assert (
        main(
            [
                "schema",
                "--data-root",
                str(tmp_path / "diabetes"),
                "--label",
                "progression",
                "--output",
                str(schema),
            ]
        )
        == 0
    )
    for cluster in (False, True):  # a local directory is read when compiling too
        built = build_config(
            ConfigRequest(data_root=str(tmp_path / "diabetes"), schema=str(schema), cluster=cluster)
        )
        spread = pd.read_csv(next((tmp_path / "diabetes").glob("*.csv")))["progression"].std(ddof=0)
        assert built.config.max_rmse == pytest.approx(spread)
        assert "the label's standard deviation" in built.gate


@pytest.mark.parametrize(
    "request_, message",
    [
        (ConfigRequest(output_root="minio://mlpipeline/v2"), "use s3://mlpipeline/v2 with --s3-endpoint"),
        (ConfigRequest(task="penguin_species", data_root="/d"), "--task selects a bundled task"),
        (ConfigRequest(data_root="gs://b/d", cluster=True), "--schema is required with --data-root"),
        (
            ConfigRequest(data_root="gs://b/d", schema=PENGUINS_SCHEMA, label="body_mass_g", cluster=True),
            "pass --max-rmse for the regression label 'body_mass_g'",
        ),
        (ConfigRequest(beam_workers=2, beam_args=("--runner=FlinkRunner",)), "not both"),
        (ConfigRequest(task="penguin_sizes"), "unknown task 'penguin_sizes'"),
        (
            ConfigRequest(task="digits", inference_data="/no/such/images"),
            "--inference-data /no/such/images is not a directory",
        ),
        (
            ConfigRequest(output_root="gs://b/o", cluster=True, metadata="mysql://ml@db/p"),
            "--metadata is for runs on this machine; on Kubeflow Pipelines and Vertex AI the cluster's own",
        ),
        (ConfigRequest(train_steps=0), "train_steps must be positive"),
    ],
)
def test_bad_requests_are_one_line_errors(request_, message):
    with pytest.raises(ConfigError, match=message) as raised:
        build_config(request_)
    assert "\n" not in str(raised.value)


def test_beam_arguments_go_to_every_beam_stage_of_a_local_run(tmp_path):
    args = ("--runner=DirectRunner", "--direct_num_workers=2", "--direct_running_mode=multi_threading")
    config = build_config(ConfigRequest(output_root=str(tmp_path), beam_args=args)).config
    assert config.beam_pipeline_args == args
    assert build_config(ConfigRequest(output_root=str(tmp_path))).config.beam_pipeline_args == ()


def test_task_resources_override_the_defaults_task_by_task():
    trainer = TaskResources(cpu=8, memory_gb=32, gpus=1, gpu_type="NVIDIA_L4")
    config = build_config(
        ConfigRequest(output_root="gs://b/r", cluster=True, task_resources=(("Trainer", trainer),))
    ).config
    assert config.resources("Trainer") == trainer
    assert config.resources("Transform") == TaskResources(cpu=2, memory_gb=4)
    assert config.resources("StatisticsGen") == TaskResources(cpu=1, memory_gb=2)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Trainer=cpu:4,memory:16", ("Trainer", TaskResources(4, 16))),
        (
            "Trainer=cpu:4,memory:16,gpus:2,gpu_type:NVIDIA_L4",
            ("Trainer", TaskResources(4, 16, 2, "NVIDIA_L4")),
        ),
    ],
)
def test_task_resources_parse(text, expected):
    assert TaskResources.parse(text) == expected


@pytest.mark.parametrize(
    "text", ["Trainer", "Trainer=cpu:4", "Trainer=memory:4", "=cpu:1,memory:1", "T=cpu:1,mem:2"]
)
def test_task_resources_that_do_not_parse_name_the_format(text):
    with pytest.raises(ValueError, match="expected TASK=cpu:N,memory:GIB"):
        TaskResources.parse(text)


def test_spans_pinned_for_a_one_off_run_and_left_open_for_a_schedule(tmp_path):
    from pipeline.data import write_generated_penguins

    for span in (3, 4):
        write_generated_penguins(tmp_path / "data" / f"span-{span}" / "rows.csv", 20, seed=span)
    base = dict(data_root=str(tmp_path / "data"), schema=PENGUINS_SCHEMA, label="species", cluster=True)
    pinned = build_config(ConfigRequest(**base, read_spans=True, pin_spans=True)).config
    open_ = build_config(ConfigRequest(**base, read_spans=True)).config
    assert (pinned.span_range, pinned.read_spans) == ((4, 4), True)
    assert (open_.span_range, open_.read_spans) == (None, True)


@requires_s3
def test_a_local_run_on_a_bucket_keeps_its_metadata_and_logs_on_this_machine(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = build_config(
        ConfigRequest(output_root="s3://bucket/runs/", s3_endpoint="http://127.0.0.1:9000", max_rmse=1.0)
    ).config
    assert config.output_root == "s3://bucket/runs"
    assert config.pipeline_root == "s3://bucket/runs/pipeline"
    assert config.serving_dir == "s3://bucket/runs/serving_model"
    local = str(tmp_path / "outputs" / "object-store" / "s3" / "bucket" / "runs")
    assert (config.state_root, config.metadata_path) == (local, f"{local}/metadata.sqlite")
    assert config.s3.endpoint == "http://127.0.0.1:9000"
    assert "--s3_endpoint_url=http://127.0.0.1:9000" in config.beam_pipeline_args
    chosen = build_config(ConfigRequest(output_root="gs://b/r", local_root=str(tmp_path / "mine"))).config
    assert chosen.metadata_path == f"{tmp_path}/mine/metadata.sqlite" and chosen.s3 is None


def test_the_loop_and_the_strategy_are_options_and_multi_worker_needs_a_cluster(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    config = build_config(ConfigRequest(loop="custom", strategy="mirrored")).config
    assert (config.trainer.loop, config.trainer.strategy) == ("custom", "mirrored")
    with pytest.raises(ConfigError, match="--strategy multi_worker needs the cluster's workers in TF_CONFIG"):
        build_config(ConfigRequest(strategy="multi_worker"))
    cluster = '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 0}}'
    monkeypatch.setenv("TF_CONFIG", cluster)
    assert build_config(ConfigRequest(strategy="multi_worker")).config.trainer.strategy == "multi_worker"
    # The similarity task's contrastive loss is one value per batch of pairs: not for the custom loop.
    with pytest.raises(
        ConfigError, match="invalid configuration: loss 'contrastive' gives one value per batch"
    ):
        build_config(ConfigRequest(task="digits_similarity", loop="custom"))


SETUP_FILE = str(REPO_ROOT / "setup.py")
DATAFLOW = ("--runner=DataflowRunner", "--project=p", "--region=europe-west4", "--temp_location=gs://b/tmp")


@pytest.mark.parametrize(
    "request_, message",
    [
        (
            ConfigRequest(output_root="outputs", beam_args=(*DATAFLOW, f"--setup_file={SETUP_FILE}")),
            r"--runner=DataflowRunner runs the data stages on workers elsewhere, which cannot read the local "
            r"output root outputs: use a bucket they can read \(--output-root gs://BUCKET/\.\.\.",
        ),
        (
            ConfigRequest(
                output_root="s3://b/o", data_root="/srv/data", beam_args=("--runner", "SparkRunner")
            ),
            "cannot read the local data root /srv/data",
        ),
        (
            ConfigRequest(output_root="gs://b/o", beam_args=DATAFLOW),
            r"its workers need the project's code; add --beam-arg=--setup_file=\./setup\.py",
        ),
        (
            ConfigRequest(output_root="gs://b/o", beam_args=(*DATAFLOW, "--setup_file=./pyproject.toml")),
            "expected the path of the project's setup.py",
        ),
    ],
)
def test_a_remote_beam_runner_is_refused_what_its_workers_cannot_use(request_, message):
    with pytest.raises(ConfigError, match=message) as raised:
        build_config(request_)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "beam_args",
    [
        (*DATAFLOW, f"--setup_file={SETUP_FILE}"),
        (*DATAFLOW, "--sdk_container_image=registry/penguin-tfx:1"),
        (
            "--runner=FlinkRunner",
            "--flink_master=flink:8081",
            "--environment_type=EXTERNAL",
            "--environment_config=localhost:50000",
        ),  # fmt: skip
        ("--runner=DirectRunner", "--direct_num_workers=2"),
    ],
)
def test_a_runner_with_buckets_and_the_projects_code_is_accepted(beam_args):
    config = build_config(ConfigRequest(output_root="gs://b/o", beam_args=beam_args)).config
    assert config.beam_pipeline_args == beam_args


def test_beams_staging_builds_the_project_from_its_setup_file(tmp_path):
    """What a remote runner's workers install: Beam's own stager builds the package from setup.py (as it does
    for --setup_file) with the project's code and its locked requirements' names."""
    import tarfile

    from apache_beam.runners.portability.stager import Stager

    package = Stager._build_setup_package(SETUP_FILE, str(tmp_path))  # noqa: SLF001 - Beam's staging step
    with tarfile.open(package) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
        [pkg_info] = [
            m for m in sdist.getmembers() if m.name.endswith("/PKG-INFO") and m.name.count("/") == 1
        ]
        metadata = sdist.extractfile(pkg_info).read().decode()
    for module in (
        "pipeline/configure.py",
        "components/csv_example_gen.py",
        "trainer_module/preprocessing.py",
        "trainer_module/run.py",
        "penguin_tfx_s3.py",
    ):
        assert module in names, module
    assert "Requires-Dist: tfx[kfp]==1.16.0" in metadata
