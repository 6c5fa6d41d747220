"""A step on two replicas equals a step on one device, for every loss the configuration lets replicas
train, with `fit` and with the custom loop (tests/replica_step.py, in its own process: logical CPU devices
must be configured before TensorFlow initialises). The losses it refuses under replicas are shown to need
the refusal: trained anyway, their step is twice one device's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).with_name("replica_step.py")


def steps(*argv) -> dict:
    done = subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_allowed_loss_steps_alike_on_one_device_and_two_replicas_with_both_loops():
    results = steps()
    assert results.pop("replicas") == 2
    assert set(results) == {
        f"{loss}/{loop}"
        for loss in ("sparse_categorical_crossentropy", "mse", "huber", "huber_fn")
        for loop in ("fit", "custom")
    }
    for case, result in results.items():
        assert result["difference"] < 1e-5, case
        assert result["step_ratio"] == pytest.approx(1.0, rel=1e-5), case


@pytest.mark.parametrize("loss", ["rmse", "contrastive"])
def test_a_refused_per_batch_loss_would_step_twice_as_far_on_two_replicas(loss):
    (result,) = [value for key, value in steps("--unchecked", loss).items() if key != "replicas"]
    assert result["step_ratio"] > 1.5
