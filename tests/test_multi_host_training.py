"""MultiWorkerMirroredStrategy across two hosts, run the way Vertex AI runs a multi-worker Trainer.

The pipeline's Trainer on Vertex (`PipelineConfig.vertex_training`) is TFX's Vertex Trainer executor: it
builds a CustomJob whose every worker pool runs one command, `python -m tfx.scripts.run_executor` with TFX's
Trainer executor and the execution's artifacts and properties, and Vertex starts it on each machine with
TF_CONFIG naming a chief and workers. Here the CustomJob is built by TFX's own code from the properties a
real pipeline run recorded for its Trainer (strategy switched to `multi_worker`), and its command runs
unchanged on two hosts: network namespaces with their own addresses, each with its own disk at the same
path, so nothing is shared but the network. The worker is killed mid-training and the job restarted, as
Vertex does with `restart_job_on_worker_restart`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, image_workdir
from tests.hosts import two_hosts

pytestmark = pytest.mark.slow

PORT = 2222  # Vertex's port for TF_CONFIG addresses; each host has its own
TRAIN_STEPS = 600  # 12 epochs of 50 steps
TIMEOUT_S = 300
WEIGHTS = re.compile(r"Trained weights on (\S+) after (\d+) steps: sha256 (\w+)")
RESUMED = re.compile(r"Resuming from checkpoint \S+: step (\d+)")


def recorded_trainer(config):
    """(input artifacts by key, execution properties) of the last Trainer execution in the run's store."""
    from ml_metadata import metadata_store
    from ml_metadata.proto import metadata_store_pb2
    from tfx.types import artifact_utils

    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = config.metadata_path
    store = metadata_store.MetadataStore(connection)
    [trainer_type] = [t for t in store.get_execution_types() if t.name.endswith("Trainer")]
    execution = store.get_executions_by_type(trainer_type.name)[-1]
    inputs: dict[str, list] = {}
    for event in store.get_events_by_execution_ids([execution.id]):
        if event.type != event.INPUT:
            continue
        [artifact] = store.get_artifacts_by_id([event.artifact_id])
        [artifact_type] = store.get_artifact_types_by_id([artifact.type_id])
        key = event.path.steps[0].key
        inputs.setdefault(key, []).append(artifact_utils.deserialize_artifact(artifact_type, artifact))
    properties = {key: value.string_value for key, value in execution.custom_properties.items()}
    return inputs, properties


def custom_job(inputs, outputs, properties, vertex) -> dict:
    """The CustomJob TFX's Vertex Trainer executor submits (runner.start_cloud_training), built by its own
    client code; only the submission to Vertex's API is left out."""
    import copy

    from tfx.extensions.google_cloud_ai_platform import training_clients

    job_args = copy.deepcopy(vertex["ai_platform_training_args"])
    job_args.pop("project")
    client = object.__new__(training_clients.VertexJobClient)  # no API client: nothing is submitted
    return client.create_training_job(
        inputs, outputs, properties, "tfx.components.trainer.executor.GenericExecutor", job_args, None, None
    )


def weights_lines(log: Path) -> dict[str, tuple[int, str]]:
    return {task: (int(steps), digest) for task, steps, digest in WEIGHTS.findall(log.read_text())}


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_two_hosts_train_in_sync_and_survive_a_killed_worker(loop, first_run, tmp_path, image_mount_point):
    from tfx.types import standard_artifacts

    from pipeline.config import VertexTraining

    disk = tmp_path / "disk"  # where each host sees its own directory
    recorded_inputs, properties = recorded_trainer(first_run.config)
    vertex = VertexTraining(project="p", region="europe-west4", image="registry/penguin:1", workers=2)
    settings = json.loads(properties["custom_config"])
    settings["trainer"].update(strategy="multi_worker", loop=loop)
    # The whole budget, so that the worker is killed mid-training: no early stop.
    settings["trainer"]["callbacks"] = [
        name
        for name in settings["trainer"]["callbacks"]
        if name not in ("early_stopping", "detect_overfitting")
    ]
    settings["checkpoint_root"] = f"{disk}/checkpoints"
    settings.update(vertex.custom_config())
    properties = {
        **properties,
        "custom_config": json.dumps(settings),
        "train_args": json.dumps({"num_steps": TRAIN_STEPS}),
    }
    # The same artifact URIs on both hosts: each host holds its own copy of the inputs.
    sources = {}
    for key, artifacts in recorded_inputs.items():
        for artifact in artifacts:
            sources[f"inputs/{key}/{artifact.id}"] = artifact.uri
            artifact.uri = f"{disk}/inputs/{key}/{artifact.id}"
    model, model_run = standard_artifacts.Model(), standard_artifacts.ModelRun()
    model.uri, model_run.uri = f"{disk}/outputs/model", f"{disk}/outputs/model_run"
    job = custom_job(
        recorded_inputs, {"model": [model], "model_run": [model_run]}, properties, vertex.custom_config()
    )
    pools = job["job_spec"]["worker_pool_specs"]
    assert job["job_spec"]["scheduling"] == {"restart_job_on_worker_restart": True}
    commands = [pool["container_spec"]["command"] for pool in pools]
    assert commands[0] == commands[1] and commands[0][:3] == ["python", "-m", "tfx.scripts.run_executor"]

    with two_hosts(tmp_path) as hosts:
        chief_host, worker_host = hosts
        for host in hosts:
            for path, source in sources.items():
                shutil.copytree(source, host.disk / path)
        cluster = {"chief": [f"{chief_host.address}:{PORT}"], "worker": [f"{worker_host.address}:{PORT}"]}

        def start(attempt: int):
            processes = []
            for host, task in zip(hosts, ("chief", "worker"), strict=True):
                tf_config = {"cluster": cluster, "task": {"type": task, "index": 0}, "environment": "cloud"}
                env = {
                    "PATH": f"{image_workdir()}/.venv/bin:{os.environ['PATH']}",
                    "HOME": str(disk),
                    "TMPDIR": str(disk),
                    "TF_USE_LEGACY_KERAS": "1",
                    "TF_CONFIG": json.dumps(tf_config),
                    "CLUSTER_SPEC": json.dumps({"cluster": cluster, "task": {"type": task, "index": 0}}),
                }
                log = tmp_path / f"{task}-{attempt}.log"
                processes.append(host.start(commands[0], env, REPO_ROOT, image_workdir(), log))
            return processes

        # Attempt 1: the worker is killed once both hosts have saved an epoch and training is under way.
        processes = start(1)
        try:
            saved = []
            deadline = time.monotonic() + TIMEOUT_S
            while time.monotonic() < deadline and not any(p.poll() is not None for p in processes):
                saved = [
                    list((host.disk / "checkpoints").glob(f"*/{task}-0/checkpoint"))
                    for host, task in zip(hosts, ("chief", "worker"), strict=True)
                ]
                if all(saved):
                    break
                time.sleep(0.01)
            processes[1].send_signal(signal.SIGKILL)
            assert all(saved), [(tmp_path / f"{t}-1.log").read_text()[-3000:] for t in ("chief", "worker")]
            # Vertex restarts the whole job when a worker restarts: the chief goes too.
            processes[0].send_signal(signal.SIGKILL)
        finally:
            for process in processes:
                process.wait()
        assert not (chief_host.disk / "outputs/model/Format-Serving/saved_model.pb").exists()
        assert not weights_lines(tmp_path / "chief-1.log")  # killed mid-training

        # Attempt 2: the same command on both hosts; each resumes from its own checkpoint.
        processes = start(2)
        try:
            codes = [process.wait(timeout=TIMEOUT_S) for process in processes]
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
    logs = {task: (tmp_path / f"{task}-2.log").read_text() for task in ("chief", "worker")}
    assert codes == [0, 0], {task: log[-3000:] for task, log in logs.items()}

    # One step count and one set of weights on both hosts.
    weights = {**weights_lines(tmp_path / "chief-2.log"), **weights_lines(tmp_path / "worker-2.log")}
    assert set(weights) == {"chief-0", "worker-0"}
    assert weights["chief-0"] == weights["worker-0"]
    assert weights["chief-0"][0] == TRAIN_STEPS
    resumed = {task: [int(s) for s in RESUMED.findall(log)] for task, log in logs.items()}
    assert resumed["chief"] == resumed["worker"] and len(resumed["chief"]) == 1
    resumed_step = resumed["chief"][0]
    assert 0 < resumed_step < TRAIN_STEPS and resumed_step % 50 == 0

    # One exported model, on the chief's disk; the worker's executor found its (empty) model directory.
    chief_model = chief_host.disk / "outputs/model/Format-Serving"
    assert (chief_model / "saved_model.pb").exists()
    assert list((worker_host.disk / "outputs/model/Format-Serving").iterdir()) == []
    record = json.loads((chief_host.disk / "outputs/model_run/training.json").read_text())
    assert (record["strategy"], record["loop"], record["replicas"]) == ("multi_worker", loop, 2)
    assert record["resumed_from_step"] == resumed_step
    assert not (worker_host.disk / "outputs/model_run/training.json").exists()
    # Trained to the end: each host removed its checkpoints.
    for host in (chief_host, worker_host):
        assert not list((host.disk / "checkpoints").glob("*/*/checkpoint"))
