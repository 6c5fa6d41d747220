"""AutoGraph leaves tf_keras's and tf.Transform's code as written (`trainer_module.tracing`), and training
gives the same weights and metrics, and a transform graph's layer the same values, either way
(tests/keras_tracing.py, a process per setting)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import tensorflow as tf
import tensorflow_transform as tft
from tensorflow.python.autograph.core import config as autograph_config
from tensorflow.python.autograph.impl import api as autograph_api
from tensorflow.python.autograph.impl import conversion

from tests.test_preprocessing import ROWS, run_transform
from trainer_module import metrics, models, serving
from trainer_module.tracing import leave_libraries_unconverted

SCRIPT = Path(__file__).with_name("keras_tracing.py")


def test_keras_code_is_left_unconverted_and_the_projects_own_is_not():
    assert tf.keras.Model.__module__.startswith("tf_keras.")
    assert conversion.is_allowlisted(tf.keras.Model.train_step)
    assert conversion.is_allowlisted(tf.keras.layers.Dense.call)
    assert conversion.is_allowlisted(tft.TFTransformOutput.transform_features_layer)
    assert not conversion.is_allowlisted(models.WideAndDeep.call)
    assert not conversion.is_allowlisted(serving.serving_feature_spec)


def test_the_metrics_are_traced_as_written():
    # What Keras's wrappers check before converting `update_state` and `result`.
    for method in (metrics.F1Score.update_state, metrics.F1Score.result, metrics.PairAccuracy.update_state):
        assert autograph_api.is_autograph_artifact(method)


def test_the_rule_is_added_once():
    leave_libraries_unconverted()
    leave_libraries_unconverted()
    for package in ("tf_keras", "tensorflow_transform"):
        assert sum(rule.matches(package) for rule in autograph_config.CONVERSION_RULES) == 1


def test_training_and_the_transform_layer_give_the_same_values_with_the_libraries_converted_or_not(
    tmp_path, tmp_path_factory
):
    _, transform_output = run_transform(tmp_path_factory, {"label_key": "species"})
    rows = tmp_path / "rows.json"
    # The raw rows without the label, as serving sends them; one with a missing value, one unseen string.
    examples = [{k: v for k, v in row.items() if k != "species"} for row in ROWS]
    examples.append({"island": ["Torgersen"], "bill_length_mm": [45.0], "sex": ["female"], "year": [2009]})
    rows.write_text(json.dumps(examples))
    results = {}
    for setting in ("converted", "unconverted"):
        run = subprocess.run(
            [
                sys.executable,
                str(SCRIPT),
                setting,
                os.path.dirname(transform_output.transform_savedmodel_dir),
                str(rows),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        results[setting] = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(results["converted"]) == {
        "wide_and_deep",
        "classifier_custom_loop",
        "regressor_huber_fn",
        "transform_layer",
    }
    layer = results["converted"]["transform_layer"]
    assert len(layer["bill_length_mm_xf"]) == len(examples)
    assert layer["island_xf"][-1] != layer["island_xf"][0]
    assert all(r["history"]["loss"] for name, r in results["converted"].items() if name != "transform_layer")
    assert results["converted"] == results["unconverted"]
