"""Artifacts on object storage: the compiled pipeline executed as Kubeflow Pipelines executes it
(tests/kfp_launcher.py) with its data, pipeline root and serving directory on an S3 server on loopback (moto,
tests/object_store.py), every task through the compiled container command with the store's settings from
the spec and its keys from the environment, as a cluster's secret would give them.

The test process itself never reads S3 through TensorFlow (tensorflow-io would abort it at exit): it looks
at the store through boto3.
"""

from __future__ import annotations

import copy
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.data import write_generated_penguins, write_penguins_csv
from pipeline.storage.locations import KFP_S3_SECRET
from tests.conftest import REPO_ROOT, requires_s3
from tests.kfp_launcher import EXECUTED, EXECUTOR_LOGS, LEGACY_OUTPUT_FILE, Launcher, TaskFailed
from tests.object_store import s3_server, secret_of

pytestmark = [pytest.mark.e2e, pytest.mark.slow, requires_s3]

BUCKET = "artifacts"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with s3_server(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        server.client().create_bucket(Bucket=BUCKET)
        yield server


@pytest.fixture(scope="module")
def s3_run(s3, tmp_path_factory, image_mount_point, pod_mount_points):
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
    # As KFP backend 2.5.0 runs it (the oldest release that publishes logs by default): the ExecutorOutput at
    # /tmp/kfp_outputs/output_metadata.json, unnamed outputs (tests/test_kubeflow_launcher.py runs 2.17.0).
    launcher = Launcher(
        work / "compiled" / "penguins" / "pipeline.yaml",
        "kfp",
        REPO_ROOT,
        work / "logs",
        secrets={KFP_S3_SECRET: secret_of(s3)},
        backend="2.5.0",
    )
    return launcher, launcher.run()


def test_every_task_succeeds_with_its_artifacts_on_the_store(s3, s3_run):
    _, run = s3_run
    assert {task: record.state for task, record in run.tasks.items()} == dict.fromkeys(run.tasks, EXECUTED)
    evaluator = run.tasks["Evaluator"].executor_input["outputs"]
    assert evaluator["outputFile"] == LEGACY_OUTPUT_FILE and "name" not in evaluator["artifacts"]["blessing"]
    assert run.tasks["Evaluator"].downloaded_bytes > 0
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
    # Without the launcher's executor-logs output, which TFX's entrypoint cannot parse (the other failure the
    # project's entrypoint prevents: tests/test_kubeflow_entrypoint.py).
    del executor_input["outputs"]["artifacts"][EXECUTOR_LOGS]
    pod = launcher.work_dir / "pods" / "control"
    Path(launcher.host_path(executor_input["outputs"]["outputFile"], pod)).parent.mkdir(parents=True)
    with pytest.raises(TaskFailed, match="exited 134") as failed:
        launcher._execute("control", container, executor_input, pod, "DataFingerprint_executor")  # noqa: SLF001
    assert "pure virtual method called" in str(failed.value)
    # The work itself was done: the fingerprint is on the store.
    assert s3.keys_under(BUCKET, f"{fresh.split(f's3://{BUCKET}/', 1)[1]}/fingerprint")


# Pushes the model directory argv[2] into the serving directory argv[1] (on the store), copying each object
# argv[3] seconds apart; with argv[4] == "die", SIGKILLed after the first object.
SLOW_PUSH = """
import os, signal, sys, time
from pathlib import Path
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import json_utils, proto_utils
from components.pusher import MODEL_NAME_KEY, Executor
from pipeline.storage.filesystems import finish, register_s3

register_s3()
real_copy = fileio.copy
def slow_copy(*args, **kwargs):
    real_copy(*args, **kwargs)
    if sys.argv[4:] == ["die"]:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(float(sys.argv[3]))
fileio.copy = slow_copy
model, pushed = standard_artifacts.Model(), standard_artifacts.PushedModel()
blessing = standard_artifacts.ModelBlessing()
model.uri = sys.argv[2]
pushed.uri = sys.argv[2] + "-pushed"
blessing.set_int_custom_property("blessed", 1)
filesystem = pusher_pb2.PushDestination.Filesystem(base_directory=sys.argv[1])
destination = pusher_pb2.PushDestination(filesystem=filesystem)
Executor().Do(
    {"model": [model], "model_blessing": [blessing]},
    {"pushed_model": [pushed]},
    {"push_destination": proto_utils.proto_to_json(destination),
     "custom_config": json_utils.dumps({MODEL_NAME_KEY: "penguin_species"})},
)
print("pushed", pushed.get_string_custom_property("pushed_version"), flush=True)
finish(0)
"""

MODEL_FILES = {
    "saved_model.pb": b"graph",
    "variables/variables.data-00000-of-00001": b"weights",
    "variables/variables.index": b"index",
    "assets.extra/tf_serving_warmup_requests": b"requests",
}


def make_model(directory, weights: bytes):
    serving = directory / "Format-Serving"
    for name, content in MODEL_FILES.items():
        (serving / name).parent.mkdir(parents=True, exist_ok=True)
        (serving / name).write_bytes(weights if name.startswith("variables/variables.data") else content)
    return directory


class ServingPoller:
    """Watches the serving prefix as TF Serving with `--model_config_file` does: the numbered versions under
    it, and the one `models.config` names, which is the one it loads; records every observation."""

    def __init__(self, s3, prefix: str):
        self.s3, self.prefix, self.seen = s3, prefix, []
        self.stop = False

    def observe(self) -> dict:
        client = self.s3.client()
        listing = client.list_objects_v2(Bucket=BUCKET, Prefix=f"{self.prefix}/", Delimiter="/")
        numbered = sorted(
            int(p["Prefix"].rstrip("/").rsplit("/", 1)[1])
            for p in listing.get("CommonPrefixes", [])
            if p["Prefix"].rstrip("/").rsplit("/", 1)[1].isdigit()
        )
        try:
            config = (
                client.get_object(Bucket=BUCKET, Key=f"{self.prefix}/models.config")["Body"].read().decode()
            )
            served = int(re.search(r"versions:\s*(\d+)", config).group(1))
        except client.exceptions.NoSuchKey:
            served = None
        files = {
            v: {
                k.split(f"{self.prefix}/{v}/", 1)[1]
                for k in self.s3.keys_under(BUCKET, f"{self.prefix}/{v}/")
            }
            for v in numbered
        }
        return {"numbered": numbered, "served": served, "files": files}

    def run(self):
        while not self.stop:
            self.seen.append(self.observe())
            time.sleep(0.02)


def store_environment(s3) -> dict:
    """A process's environment for TensorFlow's s3:// on the test's store."""
    return {
        **os.environ,
        **s3.keys,
        "S3_ENDPOINT": s3.endpoint,
        "S3_USE_HTTPS": "0",
        "AWS_REGION": "us-east-1",
    }


def push(s3, base: str, model_dir, seconds: float = 0.0, die: bool = False):
    argv = [sys.executable, "-c", SLOW_PUSH, base, str(model_dir), str(seconds), *(["die"] if die else [])]
    env = store_environment(s3)
    return subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


# ExampleGen's reading of one CSV file on the store: its header, its column types, its examples.
READ_CSV = """
import sys
from pipeline.storage.filesystems import finish, register_s3

register_s3()
from components.csv_example_gen import csv_header, infer_column_types, serialized_examples

path = sys.argv[1]
types = infer_column_types([path], csv_header(path))
print(sum(1 for _ in serialized_examples(path, types)), flush=True)
finish(0)
"""


def test_examplegen_reads_a_csv_of_several_megabytes_from_the_store(s3, tmp_path):
    """From pyarrow's read-ahead thread, TensorFlow's s3:// read of a file this size never returned (the
    1M-row benchmark hung in ExampleGen): the reader reads remote files on its own thread."""
    csv = tmp_path / "penguins.csv"
    write_generated_penguins(csv, 100_000, seed=0)
    assert csv.stat().st_size > 4_000_000
    s3.client().upload_file(str(csv), BUCKET, "large/penguins.csv")
    argv = [sys.executable, "-c", READ_CSV, f"s3://{BUCKET}/large/penguins.csv"]
    read = subprocess.run(
        argv, cwd=REPO_ROOT, env=store_environment(s3), capture_output=True, text=True, timeout=120
    )
    assert read.returncode == 0, read.stderr[-3000:]
    assert read.stdout.split()[-1] == "100000"


def cli(s3, *argv):
    env = {**os.environ, **s3.keys}
    command = [sys.executable, "-m", "pipeline", *argv, "--s3-endpoint", s3.endpoint]
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_a_model_server_never_sees_a_half_written_version_and_rollback_keeps_that(s3, tmp_path):
    prefix = "registry/serving_model"
    base = f"s3://{BUCKET}/{prefix}"
    first = push(s3, base, make_model(tmp_path / "m1", b"w1"))
    assert first.returncode == 0, first.stderr[-3000:]

    poller = ServingPoller(s3, prefix)
    watching = threading.Thread(target=poller.run)
    watching.start()
    try:
        second = push(s3, base, make_model(tmp_path / "m2", b"w2"), seconds=0.4)
    finally:
        poller.stop = True
        watching.join()
    assert second.returncode == 0, second.stderr[-3000:]
    v1, v2 = sorted(poller.seen[-1]["numbered"])
    assert poller.seen[-1]["served"] == v2
    # Every version the server was told to load was complete at that moment...
    for seen in poller.seen:
        assert seen["files"][seen["served"]] == set(MODEL_FILES), seen
    # ...while the new version's prefix was visible, incomplete, during the push: a server loading the
    # newest numbered prefix would have loaded it half-written.
    assert any(v2 in seen["numbered"] and seen["files"][v2] != set(MODEL_FILES) for seen in poller.seen)
    assert {seen["served"] for seen in poller.seen} == {v1, v2}

    # A third push killed after its first object: never served, listed as incomplete.
    killed = push(s3, base, make_model(tmp_path / "m3", b"w3"), die=True)
    assert killed.returncode == -signal.SIGKILL
    state = poller.observe()
    (v3,) = set(state["numbered"]) - {v1, v2}
    assert state["served"] == v2 and state["files"][v3] != set(MODEL_FILES)
    models = cli(s3, "models", "--output-root", f"s3://{BUCKET}/registry")
    assert models.returncode == 0, models.stderr[-3000:]
    states = dict(re.findall(r"^  (\d+)  (\w+)", models.stdout, re.MULTILINE))
    assert states == {str(v3): "incomplete", str(v2): "serving", str(v1): "available"}

    back = cli(s3, "rollback", "--output-root", f"s3://{BUCKET}/registry")
    assert back.returncode == 0, back.stderr[-3000:]
    assert f"Now serving version {v1} (was {v2})" in back.stdout
    assert poller.observe()["served"] == v1
    refused = cli(s3, "rollback", str(v3), "--output-root", f"s3://{BUCKET}/registry")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1].startswith(f"error: no complete version {v3} in {base}")
    forward = cli(s3, "rollback", str(v2), "--output-root", f"s3://{BUCKET}/registry")
    assert forward.returncode == 0 and poller.observe()["served"] == v2


def test_a_local_run_writes_its_artifacts_and_models_to_the_store(s3, tmp_path):
    """`python -m pipeline run --output-root s3://...`: data, artifacts and the served model on the store;
    the metadata store, logs and report on this machine; the exit status true after S3 use."""
    root = f"s3://{BUCKET}/local-run"
    argv = ["run", "--output-root", root, "--local-root", str(tmp_path / "state"), "--train-steps", "60"]
    first = cli(s3, *argv)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    pushed = re.search(rf"Blessed and pushed: {root}/serving_model/(\d+)", first.stdout)
    assert pushed, first.stdout[-2000:]
    assert "local-run/data/penguin_species/penguins.csv" in s3.keys_under(BUCKET, "local-run/data/")
    config = s3.client().get_object(Bucket=BUCKET, Key="local-run/serving_model/models.config")["Body"].read()
    assert f"versions: {pushed.group(1)}".encode() in config
    assert (tmp_path / "state" / "metadata.sqlite").exists()
    assert any(s3.keys_under(BUCKET, "local-run/pipeline/Trainer/"))

    again = cli(s3, *argv)
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert re.search(r"^  Trainer\s+CACHED", again.stdout, re.MULTILINE)
    assert f"already served as {root}/serving_model/{pushed.group(1)}" in again.stdout
