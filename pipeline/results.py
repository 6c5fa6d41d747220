"""Reads what a run produced (statistics, anomalies, evaluation) for the end-of-run summary."""

from __future__ import annotations

from dataclasses import dataclass, field

import tensorflow_data_validation as tfdv
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.proto import config_pb2 as tfma_config

from components.data_gate import anomaly_summary, load_anomalies_at, split_files
from components.drift_gate import STATISTICS_FILE


def examples_per_split(statistics_uri: str) -> dict[str, int]:
    return {
        split: int(tfdv.load_stats_binary(path).datasets[0].num_examples)
        for split, path in split_files(statistics_uri, STATISTICS_FILE).items()
    }


def anomalies(anomalies_uri: str) -> dict[str, str]:
    return anomaly_summary(load_anomalies_at(anomalies_uri))


@dataclass
class Evaluation:
    """Overall-slice metrics of the candidate, the baseline and their difference, and what failed."""

    candidate: dict[str, float] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)
    diff: dict[str, float] = field(default_factory=dict)
    ok: bool = False
    failures: list[str] = field(default_factory=list)


def _metric_name(key) -> str:
    """E.g. `sparse_categorical_accuracy`, `auc[class 1]`, or `body_mass_g/root_mean_squared_error` for an
    output of a multi-output model."""
    name = f"{key.output_name}/{key.name}" if key.output_name else key.name
    if key.HasField("sub_key") and key.sub_key.HasField("class_id"):
        return f"{name}[class {key.sub_key.class_id.value}]"
    return name


def _describe_failure(failure) -> str:
    """E.g. "sparse_categorical_accuracy = 0.4123, needs >= 0.9", or a change against the baseline."""
    name = _metric_name(failure.metric_key)
    value = failure.metric_value.double_value.value
    threshold = failure.metric_threshold
    if failure.metric_key.is_diff:
        change = threshold.change_threshold
        sign = ">=" if change.direction == tfma_config.MetricDirection.HIGHER_IS_BETTER else "<="
        return f"{name} change vs baseline {value:+.4f}, needs {sign} {change.absolute.value:+.4f}"
    bounds = threshold.value_threshold
    if bounds.HasField("lower_bound") and value < bounds.lower_bound.value:
        return f"{name} = {value:.4f}, needs >= {bounds.lower_bound.value:g}"
    if bounds.HasField("upper_bound") and value > bounds.upper_bound.value:
        return f"{name} = {value:.4f}, needs <= {bounds.upper_bound.value:g}"
    return f"{name} = {value:.4f} failed {failure.message or 'its threshold'}"


def evaluation(evaluation_uri: str) -> Evaluation:
    result = Evaluation()
    for metrics in tfma.load_metrics(evaluation_uri):
        if metrics.slice_key.single_slice_keys:
            continue  # the overall slice only; per-slice metrics stay in the artifact
        for entry in metrics.metric_keys_and_values:
            if not entry.value.HasField("double_value"):
                continue
            value = entry.value.double_value.value
            if entry.key.is_diff:
                result.diff[_metric_name(entry.key)] = value
            elif entry.key.model_name == "baseline":
                result.baseline[_metric_name(entry.key)] = value
            else:
                result.candidate[_metric_name(entry.key)] = value
    result.ok, result.failures = validation(evaluation_uri)
    return result


def validation(evaluation_uri: str) -> tuple[bool, list[str]]:
    """Whether the candidate passed every threshold, and one line per threshold it failed."""
    stored = tfma.load_validation_result(evaluation_uri)
    failures = [
        _describe_failure(failure)
        for per_slice in stored.metric_validations_per_slice
        for failure in per_slice.failures
    ]
    return stored.validation_ok, failures
