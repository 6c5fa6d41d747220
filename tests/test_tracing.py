"""AutoGraph leaves tf_keras's code as written (`trainer_module.tracing`), and training gives the same
weights and metrics either way (tests/keras_tracing.py, a process per setting)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import tensorflow as tf
from tensorflow.python.autograph.core import config as autograph_config
from tensorflow.python.autograph.impl import conversion

from trainer_module import models
from trainer_module.tracing import leave_keras_unconverted

SCRIPT = Path(__file__).with_name("keras_tracing.py")


def test_keras_code_is_left_unconverted_and_the_projects_own_is_not():
    assert tf.keras.Model.__module__.startswith("tf_keras.")
    assert conversion.is_allowlisted(tf.keras.Model.train_step)
    assert conversion.is_allowlisted(tf.keras.layers.Dense.call)
    assert not conversion.is_allowlisted(models.WideAndDeep.call)


def test_the_rule_is_added_once():
    leave_keras_unconverted()
    leave_keras_unconverted()
    assert sum(rule.matches("tf_keras") for rule in autograph_config.CONVERSION_RULES) == 1


def test_training_gives_the_same_weights_and_metrics_with_keras_converted_or_not():
    results = {}
    for setting in ("converted", "unconverted"):
        run = subprocess.run(
            [sys.executable, str(SCRIPT), setting], capture_output=True, text=True, timeout=600, check=False
        )
        assert run.returncode == 0, run.stderr[-3000:]
        results[setting] = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(results["converted"]) == {"wide_and_deep", "classifier_custom_loop", "regressor_huber_fn"}
    assert all(r["history"]["loss"] for r in results["converted"].values())
    assert results["converted"] == results["unconverted"]
