"""Distribution strategies, the custom loop and resume, each in its own process (logical CPU devices must be
configured before TensorFlow initialises): tests/distributed_training.py on the penguins table, seeded."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).with_name("distributed_training.py")
TIMEOUT_S = 300


def train(*argv, env=None) -> dict:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *argv],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def single_fit() -> dict:
    return train("--strategy", "default", "--loop", "fit")


@pytest.fixture(scope="module")
def one_device() -> dict:
    return train("--strategy", "one_device", "--loop", "fit")


def test_one_device_places_everything_on_one_device_and_trains_as_without_a_strategy(one_device, single_fit):
    assert one_device["strategy"] == "OneDeviceStrategy" and one_device["replicas"] == 1
    assert [device.rsplit("/", 1)[-1] for device in one_device["devices"]] == ["device:CPU:0"]
    assert single_fit["strategy"] == "_DefaultDistributionStrategy"
    assert one_device["steps"] == 200 and one_device["accuracy"] >= 0.9
    assert abs(one_device["accuracy"] - single_fit["accuracy"]) <= 0.03


def test_mirrored_runs_two_replicas_and_matches_one_device(one_device):
    for loop in ("fit", "custom"):
        mirrored = train("--strategy", "mirrored", "--loop", loop, "--logical-cpus", "2")
        assert mirrored["strategy"] == "MirroredStrategy" and len(mirrored["devices"]) == 2
        assert mirrored["replicas"] == 2 and mirrored["steps"] == 200
        assert abs(mirrored["accuracy"] - one_device["accuracy"]) <= 0.03, (loop, mirrored, one_device)


def test_custom_loop_matches_fit(single_fit):
    custom = train("--strategy", "default", "--loop", "custom")
    assert custom["steps"] == 200
    assert abs(custom["accuracy"] - single_fit["accuracy"]) <= 0.03


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_a_stopped_training_resumes_from_its_checkpoint(loop, tmp_path):
    checkpoints = str(tmp_path / "checkpoints")
    stopped = train("--loop", loop, "--checkpoints", checkpoints, "--stop-at", "100")
    assert stopped == {"stopped": "stopped at step 100", "steps": 100}
    resumed = train("--loop", loop, "--checkpoints", checkpoints)
    assert resumed["resumed_from"] == 100  # optimizer.iterations carried on from the checkpoint
    assert resumed["steps"] == 200  # the budget, not 100 more than it
    assert resumed["accuracy"] >= 0.9


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_multi_worker_mirrored_with_two_local_workers(single_fit, tmp_path):
    workers = [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]
    out = tmp_path / "model"
    processes = []
    try:
        for index in range(2):
            tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(SCRIPT),
                        "--strategy",
                        "multi_worker",
                        "--loop",
                        "custom",
                        "--out",
                        str(out),
                    ],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env={**os.environ, "TF_CONFIG": json.dumps(tf_config)},
                )
            )
        outputs = [p.communicate(timeout=TIMEOUT_S) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr[-3000:]
    results = [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs]
    assert [r["replicas"] for r in results] == [2, 2]  # one replica per worker, in sync
    assert (out / "saved_model.pb").exists()  # written by the chief (worker 0) only
    assert abs(results[0]["accuracy"] - single_fit["accuracy"]) <= 0.03
