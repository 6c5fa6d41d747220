"""Artifacts on object storage: the compiled pipeline executed as Kubeflow Pipelines executes it
(tests/kfp_launcher.py) with its data, pipeline root and serving directory on an S3 server on loopback (moto,
tests/object_store.py), every task through the compiled container command with the store's settings from
the spec and its keys from the environment, as a cluster's secret would give them.

The test process itself never reads S3 through TensorFlow (tensorflow-io would abort it at exit): it looks
at the store through boto3.
"""

from __future__ import annotations

import copy
import uuid

import pytest

from pipeline.cli import main
from pipeline.data import write_penguins_csv
from tests.conftest import REPO_ROOT
from tests.kfp_launcher import EXECUTED, Launcher, TaskFailed
from tests.object_store import s3_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BUCKET = "artifacts"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with s3_server(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        server.client().create_bucket(Bucket=BUCKET)
        yield server


@pytest.fixture(scope="module")
def s3_run(s3, tmp_path_factory, image_mount_point):
    work = tmp_path_factory.mktemp("kubeflow-s3")
    csv = write_penguins_csv(work / "data", labels=("species",))
    s3.client().upload_file(str(csv), BUCKET, "data/penguins/penguins.csv")
    argv = ["compile", "--output-root", f"s3://{BUCKET}/root", "--data-root", f"s3://{BUCKET}/data/penguins"]
    argv += ["--schema", "schemas/penguins/schema.pbtxt", "--label", "species", "--s3-endpoint", s3.endpoint]
    argv += [
        "--train-steps",
        "100",
        "--compiled-dir",
        str(work / "compiled"),
        "--image",
        "registry.local/p:1",
    ]
    assert main(argv) == 0
    launcher = Launcher(
        work / "compiled" / "penguins" / "pipeline.yaml", "kfp", REPO_ROOT, work / "logs", env=s3.keys
    )
    return launcher, launcher.run()


def test_every_task_succeeds_with_its_artifacts_on_the_store(s3, s3_run):
    _, run = s3_run
    assert {task: record.state for task, record in run.tasks.items()} == dict.fromkeys(run.tasks, EXECUTED)
    for task in ("CsvExampleGen", "Transform", "Trainer", "Evaluator"):
        uri = next(iter(run.tasks[task].outputs.values()))["uri"]
        assert uri.startswith(f"s3://{BUCKET}/root/pipeline/penguins/{run.run_id}/{task}/")
        assert s3.keys_under(BUCKET, uri.split(f"s3://{BUCKET}/", 1)[1]), task
    model = run.artifact("Trainer", "model")["uri"].split(f"s3://{BUCKET}/", 1)[1]
    assert f"{model}/Format-Serving/saved_model.pb" in s3.keys_under(BUCKET, model)


def test_the_blessed_model_is_pushed_to_the_store(s3, s3_run):
    _, run = s3_run
    push = run.artifact("Pusher", "pushed_model")["metadata"]
    assert push["pushed"] == 1
    version = push["pushed_version"]
    assert f"root/serving_model/{version}/saved_model.pb" in s3.keys_under(BUCKET, "root/serving_model/")


def test_without_the_project_entrypoint_a_task_that_used_s3_would_be_reported_failed(s3, s3_run):
    """TFX's own entrypoint does the same work and then ends with tensorflow-io's abort (status 134)."""
    launcher, run = s3_run
    container = copy.deepcopy(
        launcher.spec["deploymentSpec"]["executors"]["DataFingerprint_executor"]["container"]
    )
    container["command"] = [
        "python",
        "-m",
        "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor",
    ]
    executor_input = copy.deepcopy(run.tasks["DataFingerprint"].executor_input)
    fresh = f"{run.root}/control-{uuid.uuid4().hex[:8]}"
    output = executor_input["outputs"]["artifacts"]["fingerprint"]["artifacts"][0]
    output["uri"] = f"{fresh}/fingerprint"
    executor_input["outputs"]["outputFile"] = f"{launcher.local_path(fresh)}/output_metadata.json"
    with pytest.raises(TaskFailed, match="exited 134") as failed:
        launcher._execute("control", container, executor_input)  # noqa: SLF001
    assert "pure virtual method called" in str(failed.value)
    # The work itself was done: the fingerprint is on the store.
    assert s3.keys_under(BUCKET, f"{fresh.split(f's3://{BUCKET}/', 1)[1]}/fingerprint")
