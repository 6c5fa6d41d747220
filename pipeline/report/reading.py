"""Reading a run back for its report: `collect` gathers from ML Metadata and the run's artifacts (TFDV
statistics and anomalies, the Trainer's training record, TFMA's metrics and validation, the push) what the
pages show, as plain values."""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from importlib import metadata as package_metadata

from pipeline.config import REPO_ROOT, PipelineConfig
from pipeline.run_summary import RunSummary, previous_span_statistics, run_summaries

PACKAGES = (
    "tfx",
    "tensorflow",
    "tf-keras",
    "tensorflow-transform",
    "tensorflow-data-validation",
    "tensorflow-model-analysis",
    "apache-beam",
    "ml-metadata",
    "kfp",
)
# What TFDV's statistics hold in place of a value that is not UTF-8 text.
BINARY = "__BYTES_VALUE__"


class ReportError(ValueError):
    """No run to report on (none yet, or an unknown run id)."""


@dataclass
class Feature:
    name: str
    kind: str  # number, string, bytes
    missing: float  # fraction of examples without a value
    values: str  # "min ... mean ... max" or the most frequent values
    drift: str = ""  # distance to the previous span's distribution, where there is one


@dataclass
class SliceMetrics:
    name: str  # "overall" or "feature = value"
    candidate: dict[str, float] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)


@dataclass
class Report:
    config: PipelineConfig
    summary: RunSummary
    outcome: str = ""
    splits: dict[str, int] = field(default_factory=dict)
    features: list[Feature] = field(default_factory=list)
    anomalies: dict[str, str] = field(default_factory=dict)
    drift_baseline: str | None = None
    training: dict | None = None
    slices: list[SliceMetrics] = field(default_factory=list)
    thresholds: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lineage: dict[str, str] = field(default_factory=dict)
    configuration: str = ""  # the effective configuration the run recorded (YAML), when it did

    @property
    def stopped_at(self) -> str | None:
        return self.summary.stopped_at

    @property
    def trained(self) -> bool:
        return self.summary.node_states.get("Trainer") in ("COMPLETE", "CACHED")

    @property
    def overall(self) -> SliceMetrics | None:
        return next((s for s in self.slices if s.name == "overall"), None)


# ---- collecting -------------------------------------------------------------------------------------


def find_run(config: PipelineConfig, run_id: str | None = None) -> RunSummary:
    store = config.metadata_store
    if not store.exists():
        raise ReportError(f"no run of {config.pipeline_name!r} yet: {store} does not exist")
    runs = run_summaries(store, config.pipeline_name)
    if not runs:
        raise ReportError(f"no run of {config.pipeline_name!r} in {store}")
    if run_id is None:
        return runs[-1]
    for run in runs:
        if run.run_id == run_id:
            return run
    recent = ", ".join(r.run_id for r in runs[-5:])
    raise ReportError(f"no run {run_id!r} of {config.pipeline_name!r}; the latest are: {recent}")


def _feature(stats, drift: dict[str, str]) -> Feature:
    name = ".".join(stats.path.step) or stats.name
    kind = stats.WhichOneof("stats")
    if kind == "num_stats":
        common = stats.num_stats.common_stats
        n = stats.num_stats
        values = f"min {n.min:.4g} · mean {n.mean:.4g} · max {n.max:.4g}"
        label = "number"
    elif kind == "string_stats" and any(v.value == BINARY for v in stats.string_stats.top_values):
        # Binary values (images): TFDV keeps their count and length, not the bytes.
        common = stats.string_stats.common_stats
        values = f"{stats.string_stats.unique} distinct; {stats.string_stats.avg_length:.0f} bytes on average"
        label = "bytes"
    elif kind == "string_stats":
        common = stats.string_stats.common_stats
        top = ", ".join(f"{v.value} ({int(v.frequency)})" for v in stats.string_stats.top_values[:4])
        values = f"{stats.string_stats.unique} values; most frequent: {top}"
        label = "string"
    else:
        common = stats.bytes_stats.common_stats
        b = stats.bytes_stats
        values = f"{b.unique} distinct; {b.avg_num_bytes:.0f} bytes on average (max {b.max_num_bytes:.0f})"
        label = "bytes"
    return Feature(name, label, share_without_value(common), values, drift.get(name, ""))


def share_without_value(common) -> float:
    """The share of examples with no value for a feature (TFDV CommonStatistics). An empty CSV cell is the
    feature with an empty value list, which TFDV counts as present, not missing: for a feature of at most
    one value per example, the examples without one are those that add no value to `tot_num_values`."""
    total = common.num_non_missing + common.num_missing
    if not total:
        return 0.0
    if common.max_num_values <= 1:
        return (total - common.tot_num_values) / total
    return common.num_missing / total


def drift_distances(statistics, previous, schema) -> dict[str, str]:
    """Feature -> its distance to the previous statistics: L-infinity for categories, Jensen-Shannon
    divergence for numbers (TFDV's drift comparators, measured with a threshold no feature reaches)."""
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import schema_pb2

    measured = schema_pb2.Schema()
    measured.CopyFrom(schema)
    for feature in measured.feature:
        if feature.type == schema_pb2.FLOAT or (
            feature.type == schema_pb2.INT and not feature.HasField("int_domain")
        ):
            feature.drift_comparator.jensen_shannon_divergence.threshold = 1.0
        else:
            feature.drift_comparator.infinity_norm.threshold = 1.0
    anomalies = tfdv.validate_statistics(statistics, measured, previous_statistics=previous)
    distances = {}
    for info in anomalies.drift_skew_info:
        for m in info.drift_measurements:
            kind = "L-inf" if m.type == m.L_INFTY else "JS"
            distances[".".join(info.path.step)] = f"{kind} {m.value:.3f}"
    return distances


def _data(report: Report) -> None:
    from components.drift_gate import load_split_statistics
    from pipeline import results

    outputs = report.summary.outputs
    statistics_uri = outputs.get("StatisticsGen", {}).get("statistics")
    if not statistics_uri or not os.path.exists(statistics_uri):
        return
    report.splits = results.examples_per_split(statistics_uri)
    train = load_split_statistics(statistics_uri)
    drift = {}
    span = report.summary.span
    if span is not None:
        previous = previous_span_statistics(report.config.metadata_store, report.config.pipeline_name, span)
        schema_uri = outputs.get("ImportSchemaGen", {}).get("schema")
        if previous and schema_uri:
            import tensorflow_data_validation as tfdv

            schema = tfdv.load_schema_text(os.path.join(schema_uri, "schema.pbtxt"))
            drift = drift_distances(train, load_split_statistics(previous), schema)
            report.drift_baseline = previous
    report.features = [_feature(stats, drift) for stats in train.datasets[0].features]
    anomalies_uri = outputs.get("ExampleValidator", {}).get("anomalies")
    if anomalies_uri:
        report.anomalies = results.anomalies(anomalies_uri)


def _slice_name(slice_key) -> str:
    keys = slice_key.single_slice_keys
    if not keys:
        return "overall"
    parts = []
    for key in keys:
        value = getattr(key, key.WhichOneof("kind"))
        parts.append(f"{key.column} = {value.decode() if isinstance(value, bytes) else value}")
    return ", ".join(parts)


def _evaluation(report: Report, evaluation_uri: str) -> None:
    import tensorflow_model_analysis as tfma

    from pipeline import results

    by_slice: dict[str, SliceMetrics] = {}
    for metrics in tfma.load_metrics(evaluation_uri):
        name = _slice_name(metrics.slice_key)
        entry = by_slice.setdefault(name, SliceMetrics(name))
        for item in metrics.metric_keys_and_values:
            if not item.value.HasField("double_value") or item.key.is_diff:
                continue
            side = entry.baseline if item.key.model_name == "baseline" else entry.candidate
            side[results._metric_name(item.key)] = item.value.double_value.value
    report.slices = sorted(by_slice.values(), key=lambda s: (s.name != "overall", _natural(s.name)))
    _, report.failures = results.validation(evaluation_uri)
    report.thresholds = thresholds(evaluation_uri)


def _natural(text: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def thresholds(evaluation_uri: str) -> list[str]:
    """The Evaluator's thresholds, one line each, from the eval config TFMA stored with its results."""
    from google.protobuf import json_format
    from tensorflow_model_analysis.proto import config_pb2 as tfma_config

    path = os.path.join(evaluation_uri, "eval_config.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        config = json_format.ParseDict(
            json.load(f)["evalConfig"], tfma_config.EvalConfig(), ignore_unknown_fields=True
        )
    lines = []
    for spec in config.metrics_specs:
        for metric in spec.metrics:
            for per_slice in metric.per_slice_thresholds:
                name = json.loads(metric.config).get("name") if metric.config else None
                # TFMA names a metric by its class in snake case unless its config names it.
                name = name or re.sub(r"(?<=[a-z])(?=[A-Z])", "_", metric.class_name).lower()
                if spec.output_names:
                    name = f"{spec.output_names[0]}/{name}"
                threshold = per_slice.threshold
                parts = []
                bounds = threshold.value_threshold
                if bounds.HasField("lower_bound"):
                    parts.append(f">= {bounds.lower_bound.value:g}")
                if bounds.HasField("upper_bound"):
                    parts.append(f"<= {bounds.upper_bound.value:g}")
                if threshold.HasField("change_threshold"):
                    change = threshold.change_threshold
                    allowed = round(abs(change.absolute.value), 6)  # the gate adds 1e-10 of slack
                    worse = (
                        "below"
                        if change.direction == tfma_config.MetricDirection.HIGHER_IS_BETTER
                        else "above"
                    )
                    parts.append(f"at most {allowed:.4g} {worse} the baseline's")
                lines.append(f"{name} (overall): {', '.join(parts)}")
    return lines


def _git_commit() -> str:
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return f"{commit}{' with uncommitted changes' if dirty else ''} (at report time)"


def _versions() -> str:
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {package_metadata.version(name)}")
        except package_metadata.PackageNotFoundError:
            continue
    return ", ".join(found)


def _spans(spans) -> str:
    if not spans:
        return "the whole data directory (no spans)"
    first, last = spans[0], spans[-1]
    return str(first) if first == last else f"{first}-{last}"


def collect(config: PipelineConfig, summary: RunSummary) -> Report:
    """Everything the pages show of the run `summary` (read back by `find_run`)."""
    from trainer_module.run import TRAINING_RECORD

    report = Report(config, summary)
    _data(report)
    run_dir = summary.outputs.get("Trainer", {}).get("model_run")
    if run_dir and os.path.exists(os.path.join(run_dir, TRAINING_RECORD)):
        with open(os.path.join(run_dir, TRAINING_RECORD)) as f:
            report.training = json.load(f)
    evaluation_uri = summary.outputs.get("Evaluator", {}).get("evaluation")
    if evaluation_uri and os.path.exists(evaluation_uri):
        _evaluation(report, evaluation_uri)
    report.outcome = summary.outcome(len(report.anomalies))
    trainer = summary.trainer_config or {}
    spans = trainer.get("spans") or ([summary.span] if summary.span is not None else None)
    report.lineage = {
        "run id": summary.run_id,
        "pipeline": config.pipeline_name,
        "data": config.data_dir,
        "data spans": _spans(spans),
        "code fingerprint": trainer.get("code_fingerprint", "unknown (no Trainer in this run)"),
        "code version": _git_commit(),
        "packages": _versions(),
        "metadata store": str(config.metadata_store),  # never its password
    }
    if summary.predictions is not None:
        report.lineage["batch inference"] = f"{config.inference_data}: {summary.predictions.describe()}"
    return report
