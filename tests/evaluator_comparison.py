"""A run's Evaluator (the project's executor, metrics from TFMA's batches: components/batched_metrics.py)
against TFX's own executor on the same inputs: the execution's input artifacts and execution properties are
read from the run's ML Metadata store, TFX's executor writes its own evaluation and blessing beside, and
`compare` asserts the same slices, the same metric keys with the same values, the same validation result and
the same blessing with the same custom properties."""

from __future__ import annotations

import math
import os

from tfx.components.evaluator import executor as tfx_evaluator

from components.evaluator import Executor, without_empty_baseline
from pipeline.run_summary import node_execution

RELATIVE = 1e-6


def _copies(outputs: dict, directory: str) -> dict:
    made = {}
    for key, (artifact,) in outputs.items():
        copy = type(artifact)()
        copy.uri = os.path.join(directory, key)
        os.makedirs(copy.uri, exist_ok=True)
        made[key] = [copy]
    return made


def run_tfx_evaluator(store_location, run_id: str, directory: str, eval_config: str | None = None) -> dict:
    """TFX's Evaluator executor on the run's Evaluator inputs; its output artifacts in `directory`. With
    `eval_config` (JSON) in the place of the run's, the project's executor runs on it too, its outputs in
    `directory`/ours."""
    _, inputs, outputs, properties = node_execution(store_location, run_id, "Evaluator")
    # The project's baseline rule (no baseline that is the candidate or holds no model) is not TFMA's work.
    inputs = without_empty_baseline(inputs)
    if eval_config is not None:
        properties = {**properties, "eval_config": eval_config}
        ours = _copies(outputs, os.path.join(directory, "ours"))
        Executor().Do(inputs, ours, properties)
        outputs = ours
    theirs = _copies(outputs, directory)
    tfx_evaluator.Executor().Do(inputs, theirs, properties)
    return {"ours": {k: v[0] for k, v in outputs.items()}, "tfx": {k: v[0] for k, v in theirs.items()}}


def _metrics(uri: str) -> dict:
    import tensorflow_model_analysis as tfma

    found = {}
    for metrics in tfma.load_metrics(uri):
        slice_key = metrics.slice_key.SerializeToString(deterministic=True)
        values = {}
        for item in metrics.metric_keys_and_values:
            kind = item.value.WhichOneof("type")
            values[item.key.SerializeToString(deterministic=True)] = (
                item.value.double_value.value if kind == "double_value" else item.value.SerializeToString()
            )
        found[slice_key] = values
    return found


def _validation(uri: str) -> tuple:
    import tensorflow_model_analysis as tfma

    result = tfma.load_validation_result(uri)
    failures = sorted(
        (
            per_slice.slice_key.SerializeToString(deterministic=True),
            tuple(sorted(f.metric_key.SerializeToString(deterministic=True) for f in per_slice.failures)),
        )
        for per_slice in result.metric_validations_per_slice
    )
    return result.validation_ok, failures


def compare(both: dict) -> dict:
    """Asserts the two evaluations and blessings are the same; returns the metrics compared (slice -> key
    -> value) for the caller's own checks."""
    ours, theirs = _metrics(both["ours"]["evaluation"].uri), _metrics(both["tfx"]["evaluation"].uri)
    assert sorted(ours) == sorted(theirs), "the same slices"
    for slice_key, values in theirs.items():
        assert sorted(ours[slice_key]) == sorted(values), f"the same metric keys in slice {slice_key!r}"
        for key, value in values.items():
            mine = ours[slice_key][key]
            if isinstance(value, float):
                assert (math.isnan(value) and math.isnan(mine)) or math.isclose(
                    mine, value, rel_tol=RELATIVE, abs_tol=1e-12
                ), (slice_key, key, mine, value)
            else:
                assert mine == value, (slice_key, key)
    assert _validation(both["ours"]["evaluation"].uri) == _validation(both["tfx"]["evaluation"].uri)
    blessing, tfx_blessing = both["ours"]["blessing"], both["tfx"]["blessing"]
    assert sorted(os.listdir(blessing.uri)) == sorted(os.listdir(tfx_blessing.uri))
    names = ("blessed", "current_model", "current_model_id", "baseline_model", "baseline_model_id")
    for name in names:
        assert blessing.has_custom_property(name) == tfx_blessing.has_custom_property(name), name
        if blessing.has_custom_property(name):
            assert blessing.get_custom_property(name) == tfx_blessing.get_custom_property(name), name
    return ours
