"""Every process that imports the project gets Keras 2, whatever the caller's environment says."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("package", ["pipeline", "components", "trainer_module"])
def test_importing_a_package_selects_keras_2_before_tensorflow(package):
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["TF_USE_LEGACY_KERAS"] = "0"  # even an explicit opt-out is overridden: TFX 1.16 cannot use Keras 3
    code = (
        f"import {package}, os, tensorflow as tf; "
        "print(os.environ['TF_USE_LEGACY_KERAS'], tf.keras.layers.Dense.__module__.split('.')[0])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["1", "tf_keras"]
