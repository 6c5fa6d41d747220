"""The run report and the model card: one self-contained HTML page each, from what the run stored.

`collect` reads a run back from ML Metadata and its artifacts (TFDV statistics and anomalies, the Trainer's
training record, TFMA's metrics and validation, the push); `render_report` and `render_model_card` turn
that into pages with the plots embedded as PNG data, so they open anywhere, offline; `write_reports` puts
both in `<output root>/reports/<run id>/`.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from importlib import metadata as package_metadata

from pipeline.config import REPO_ROOT, PipelineConfig
from pipeline.run_summary import RunSummary, previous_span_statistics, run_summaries

REPORT_FILE = "report.html"
MODEL_CARD_FILE = "model_card.html"
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
# A slice with fewer evaluation examples than this gives a rough estimate; the model card says so.
SMALL_SLICE = 50


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
        """The component that failed, if one did."""
        return next((node for node, state in self.summary.node_states.items() if state == "FAILED"), None)

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


def _outcome(report: Report) -> str:
    summary = report.summary
    if report.stopped_at == "DataGate" and not report.anomalies and summary.unlabelled_note:
        return f"Stopped by the data gate: {summary.unlabelled_note}, more than allowed; nothing was trained."
    if report.stopped_at == "DataGate":
        count = len(report.anomalies)
        return (
            f"Stopped by the data gate: {count} anomal{'y' if count == 1 else 'ies'}; nothing was trained "
            "or pushed."
        )
    if report.stopped_at == "DriftGate":
        return (
            "Stopped by the drift gate: the data moved from the previous span; nothing was trained or pushed."
        )
    if report.stopped_at == "ServingCheck":
        return (
            "Blessed by the Evaluator but stopped by the serving check: the model cannot serve; nothing was "
            "pushed."
        )
    if report.stopped_at:
        return f"Stopped: {report.stopped_at} failed; nothing was pushed (see the run's log)."
    if summary.blessed and summary.pushed_destination:
        return f"Blessed and pushed as version {os.path.basename(summary.pushed_destination)}."
    if summary.blessed and summary.already_served:
        served = os.path.basename(summary.already_served)
        return f"Blessed; already served as version {served} (not pushed again)."
    if summary.blessed:
        return "Blessed; this model's push was done by an earlier run."
    if summary.blessed is False:
        return "Not blessed: the model missed the gate; nothing was pushed, the served model is unchanged."
    return "The run did not reach evaluation."


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
    report.outcome = _outcome(report)
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


# ---- plots ------------------------------------------------------------------------------------------


def _png(figure) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def training_curves(history: dict[str, list[float]]) -> str | None:
    """One panel per metric, train and validation by epoch; a base64 PNG (None without history)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [k for k in history if not k.startswith("val_") and k != "lr"]
    if not metrics:
        return None
    from matplotlib.ticker import MaxNLocator

    columns = min(3, len(metrics))
    rows = -(-len(metrics) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False)
    for axis in axes.flat[len(metrics) :]:
        axis.set_visible(False)
    for axis, name in zip(axes.flat, metrics, strict=False):
        epochs = range(1, len(history[name]) + 1)
        axis.plot(epochs, history[name], marker="o", label="train")
        if f"val_{name}" in history:
            axis.plot(epochs, history[f"val_{name}"], marker="o", label="validation")
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    return _png(figure)


def slice_chart(slices: list[SliceMetrics], metric: str) -> str | None:
    """The gated metric per slice, the candidate beside the baseline; a base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [s for s in slices if metric in s.candidate]
    if len(shown) < 2:
        return None
    figure, axis = plt.subplots(figsize=(min(12, 1.0 + 0.7 * len(shown)), 3.0))
    positions = range(len(shown))
    with_baseline = any(metric in s.baseline for s in shown)
    width = 0.4 if with_baseline else 0.7
    offset = width / 2 if with_baseline else 0
    axis.bar([p - offset for p in positions], [s.candidate[metric] for s in shown],
             width, label="candidate")  # fmt: skip
    if with_baseline:
        axis.bar([p + width / 2 for p in positions], [s.baseline.get(metric, 0.0) for s in shown], width,
                 label="baseline")  # fmt: skip
    axis.set_xticks(list(positions), [s.name.replace(" = ", "=") for s in shown], rotation=45, ha="right")
    axis.set_title(f"{metric} per slice")
    axis.grid(axis="y", alpha=0.3)
    axis.legend()
    return _png(figure)


# ---- pages ------------------------------------------------------------------------------------------

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; padding: 0 1em; }
h1 { margin-bottom: 0.2em; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.outcome { padding: 0.7em 1em; border-radius: 6px; font-size: 1.1em; font-weight: 600; }
.good { background: #e3f4e3; border: 1px solid #7bc47b; }
.bad { background: #fbe4e4; border: 1px solid #e08b8b; }
.muted { color: #666; } code { background: #f4f4f4; padding: 0 0.2em; } img { max-width: 100%; }
"""


def _e(value) -> str:
    return html.escape(str(value))


def _table(header: list[str], rows: list[list], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=num' if i in numeric else ''}>{_e(c)}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _page(title: str, body: str) -> str:
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
        f"<style>{STYLE}</style></head><body>{body}</body></html>\n"
    )


def _fmt(value, name: str = "") -> str:
    if name.endswith("example_count") and isinstance(value, float):
        return str(int(value))
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _pairs(rows: list[list]) -> str:
    """A two-column table of names and values, without a header."""
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _gated_metric(report: Report) -> str | None:
    overall = report.overall
    if overall is None:
        return None
    for name in ("sparse_categorical_accuracy", "pair_accuracy", "root_mean_squared_error"):
        matches = [m for m in overall.candidate if m.rsplit("/", 1)[-1] == name]
        if matches:
            return matches[0]
    return None


def _data_section(report: Report) -> str:
    if not report.splits:
        return "<h2>Data</h2><p>No statistics: the run stopped before StatisticsGen.</p>"
    parts = ["<h2>Data</h2>"]
    parts.append(_table(["split", "examples"], [[s, n] for s, n in report.splits.items()], {1}))
    if report.summary.unlabelled_note:
        parts.append(f"<p>{_e(report.summary.unlabelled_note)}.</p>")
    drift = f"; drift against {report.drift_baseline}" if report.drift_baseline else ""
    parts.append(f"<p class=muted>Features of the training split{_e(drift)}:</p>")
    header = ["feature", "type", "missing", "values"]
    rows = [[f.name, f.kind, f"{100 * f.missing:.1f}%", f.values] for f in report.features]
    if report.drift_baseline:
        header.append("drift vs previous span")
        rows = [row + [f.drift] for row, f in zip(rows, report.features, strict=True)]
    parts.append(_table(header, rows, {2}))
    if report.anomalies:
        parts.append("<h3>Anomalies</h3>")
        parts.append(_table(["feature", "anomaly"], [[k, v] for k, v in report.anomalies.items()]))
    else:
        parts.append("<p>Anomalies: none (the data matches the schema).</p>")
    return "".join(parts)


def _training_section(report: Report) -> str:
    if not report.trained:
        return "<h2>Training</h2><p>Nothing was trained: the run stopped before the Trainer.</p>"
    state = report.summary.node_states.get("Trainer")
    training = report.training
    if training is None:
        return f"<h2>Training</h2><p>The Trainer {state.lower()}; its training record is missing.</p>"
    cached = " (cached: this model was trained by an earlier run)" if state == "CACHED" else ""
    epochs_run = len(next(iter(training["history"].values()), []))
    stopped = training.get("stopped_by") or {}
    stop_line = (
        "; ".join(f"{name} stopped training after epoch {epoch}" for name, epoch in stopped.items())
        or "neither EarlyStopping nor DetectOverfitting fired"
    )
    rows = [
        ["model", training["model"]],
        ["loss", training["loss"]],
        ["optimizer", f"{training['optimizer']}, learning rate {training['learning_rate']:g}"],
        ["strategy", f"{training['strategy']} ({training['replicas']} replica(s)), {training['loop']} loop"],
        [
            "steps",
            f"{training['train_steps']} = {training['epochs_planned']} epochs x "
            f"{training['steps_per_epoch']}, batch {training['batch_size']}; {epochs_run} epochs run",
        ],  # fmt: skip
        ["callbacks", ", ".join(training["callbacks"])],
        ["stopping", stop_line],
        *_callback_rows(training),
        [
            "duration",
            f"{training['seconds']:.1f} s of training; {report.summary.seconds.get('Trainer', 0):.1f} s "
            "for the Trainer component",
        ],  # fmt: skip
    ]
    parts = [f"<h2>Training</h2><p class=muted>Trainer {_e(state)}{_e(cached)}.</p>", _pairs(rows)]
    curves = training_curves(training["history"])
    if curves:
        parts.append(f"<p><img alt='training curves' src='data:image/png;base64,{curves}'></p>")
    last = {k: v[-1] for k, v in training["history"].items() if v}
    parts.append(_table(["metric at the last epoch", "value"], [[k, _fmt(v)] for k, v in last.items()], {1}))
    return "".join(parts)


def _callback_rows(training: dict) -> list[list[str]]:
    """What ModelCheckpoint and BatchTiming kept, when they ran."""
    rows = []
    if training.get("best_epoch"):
        rows.append(
            ["checkpoint", f"the model has the weights of epoch {training['best_epoch']} (lowest val_loss)"]
        )
    if training.get("batch_timing"):
        medians = ", ".join(f"{epoch['median_ms']:.1f}" for epoch in training["batch_timing"])
        slowest = max(epoch["slowest_ms"] for epoch in training["batch_timing"])
        rows.append(["batch time", f"median per epoch {medians} ms; slowest batch {slowest:.1f} ms"])
    return rows


def _evaluation_section(report: Report) -> str:
    if not report.slices:
        return "<h2>Evaluation</h2><p>No evaluation: the run stopped before the Evaluator.</p>"
    summary = report.summary
    parts = ["<h2>Evaluation</h2>"]
    decision = "Blessed" if summary.blessed else "Not blessed"
    reason = "; ".join(report.failures) if report.failures else "every threshold was met"
    parts.append(f"<p><b>{decision}</b>: {_e(reason)}.</p>")
    if report.thresholds:
        parts.append(
            "<p>Thresholds:</p><ul>" + "".join(f"<li>{_e(t)}</li>" for t in report.thresholds) + "</ul>"
        )
    overall = report.overall
    names = sorted(overall.candidate) if overall else []
    has_baseline = bool(overall and overall.baseline)
    rows = []
    for name in names:
        row = [name, _fmt(overall.candidate[name], name)]
        if has_baseline:
            base = overall.baseline.get(name)
            row += [
                _fmt(base, name) if base is not None else "",
                _fmt(overall.candidate[name] - base, name) if base is not None else "",
            ]
        rows.append(row)
    header = ["metric (overall)", "candidate"] + (["baseline", "change"] if has_baseline else [])
    parts.append(_table(header, rows, {1, 2, 3}))
    if not has_baseline:
        parts.append("<p class=muted>No baseline: no model of this pipeline was blessed before.</p>")
    sliced = [s for s in report.slices if s.name != "overall"]
    if sliced:
        metric_names = sorted({m for s in sliced for m in s.candidate})
        rows = [[s.name] + [_fmt(s.candidate.get(m, ""), m) for m in metric_names] for s in sliced]
        parts.append("<h3>Per slice (candidate)</h3>")
        parts.append(_table(["slice"] + metric_names, rows, set(range(1, len(metric_names) + 1))))
        gated = _gated_metric(report)
        chart = slice_chart(report.slices, gated) if gated else None
        if chart:
            parts.append(f"<p><img alt='{_e(gated)} per slice' src='data:image/png;base64,{chart}'></p>")
    return "".join(parts)


def _deployment_section(report: Report) -> str:
    summary = report.summary
    if summary.pushed_destination:
        line = (
            f"Pushed: version {os.path.basename(summary.pushed_destination)} at {summary.pushed_destination}"
        )
    elif summary.already_served:
        line = f"Not pushed again: the same model is served as {summary.already_served}"
    else:
        line = "Not pushed: the served model is unchanged"
    serving = _e(report.config.serving_dir)
    return f"<h2>Deployment</h2><p>{_e(line)}.</p><p class=muted>Serving directory: {serving}</p>"


def _lineage_section(report: Report) -> str:
    rows = [[k, v] for k, v in report.lineage.items()]
    artifacts = [[f"{node}.{key}", uri] for node, outputs in sorted(report.summary.outputs.items())
                 for key, uri in sorted(outputs.items())]  # fmt: skip
    states = [[node, state, f"{report.summary.seconds.get(node, 0):.1f} s"]
              for node, state in report.summary.node_states.items()]  # fmt: skip
    return (
        "<h2>Lineage</h2>" + _pairs(rows)
        + "<h3>Components</h3>" + _table(["component", "state", "time"], states, {2})
        + "<h3>Artifacts</h3>" + _table(["output", "URI"], artifacts)
    )  # fmt: skip


def render_report(report: Report) -> str:
    good = report.summary.blessed and not report.stopped_at
    title = f"Run report: {report.config.pipeline_name}"
    body = (
        f"<h1>{_e(title)}</h1><p class=muted>Run {_e(report.summary.run_id)} · report written "
        f"{_e(time.strftime('%Y-%m-%d %H:%M:%S'))} · <a href='{MODEL_CARD_FILE}'>model card</a></p>"
        f"<p class='outcome {'good' if good else 'bad'}'>{_e(report.outcome)}</p>"
        + _data_section(report)
        + _training_section(report)
        + _evaluation_section(report)
        + _deployment_section(report)
        + _lineage_section(report)
        + (f"<h2>Configuration</h2><pre>{_e(report.configuration)}</pre>" if report.configuration else "")
    )
    return _page(title, body)


def intended_use(config: PipelineConfig) -> str:
    from pipeline.tasks import TASKS

    for name, task in TASKS.items():
        if task.config.get("pipeline_name") == config.pipeline_name:
            return f"Bundled task {name}: {task.description}."
    labels = " and ".join(f"{label} ({task})" for label, task in config.labels.items())
    return f"Predicts {labels} from the other columns of the data in {config.data_dir}."


def limitations(report: Report) -> list[str]:
    notes = []
    total = sum(report.splits.values())
    if total:
        notes.append(
            f"Trained on {report.splits.get('train', 0)} examples and evaluated on "
            f"{report.splits.get('eval', 0)}: figures carry the uncertainty of a sample this size."
        )
    small = [
        s.name
        for s in report.slices
        if s.name != "overall" and s.candidate.get("example_count", SMALL_SLICE) < SMALL_SLICE
    ]
    if small:
        notes.append(
            f"Slices with fewer than {SMALL_SLICE} evaluation examples give rough estimates: "
            f"{', '.join(small)}."
        )
    notes.append(
        "Valid only for data like the training data: values outside the curated schema's domains are "
        "refused by the data gate, but a shift within them (another population, another instrument) is not "
        "detected "
        "unless the data comes in spans, which the drift gate compares."
    )
    if report.thresholds:
        notes.append("The gate checks the overall slice only; per-slice figures are reported, not gated.")
    if not report.summary.blessed:
        notes.append("This model was not blessed and is not served.")
    return notes


def render_model_card(report: Report) -> str:
    config = report.config
    training = report.training or {}
    title = f"Model card: {config.pipeline_name}"
    details = [
        ["model", training.get("model", "not trained in this run")],
        ["task", ", ".join(f"{label}: {task}" for label, task in config.labels.items())],
        ["run", report.summary.run_id],
        ["decision", report.outcome],
        ["code fingerprint", report.lineage.get("code fingerprint", "")],
    ]
    body = [f"<h1>{_e(title)}</h1>", "<h2>Model details</h2>", _pairs(details)]
    body.append(f"<h2>Intended use</h2><p>{_e(intended_use(config))}</p>")
    data_rows = [[split, n] for split, n in report.splits.items()]
    inputs = [f.name for f in report.features if f.name not in config.served_without]
    body.append("<h2>Data</h2>")
    body.append(
        f"<p>{_e(report.lineage.get('data', ''))}, {_e(report.lineage.get('data spans', ''))}; "
        f"{len(inputs)} input features: {_e(', '.join(inputs))}; "
        f"label{'s' if len(config.served_without) > 1 else ''}: {_e(', '.join(config.served_without))}.</p>"
    )
    if data_rows:
        body.append(_table(["split", "examples"], data_rows, {1}))
    body.append("<h2>Metrics</h2>")
    if report.slices:
        names = sorted({m for s in report.slices for m in s.candidate})
        rows = [[s.name] + [_fmt(s.candidate.get(m, ""), m) for m in names] for s in report.slices]
        body.append(_table(["slice"] + names, rows, set(range(1, len(names) + 1))))
    else:
        body.append("<p>Not evaluated in this run.</p>")
    body.append(
        "<h2>Limitations</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in limitations(report)) + "</ul>"
    )
    body.append(f"<p class=muted><a href='{REPORT_FILE}'>The full run report</a></p>")
    return _page(title, "".join(body))


def report_dir(config: PipelineConfig, run_id: str) -> str:
    return os.path.join(config.state_root, "reports", re.sub(r"[^A-Za-z0-9_.-]", "-", run_id))


def write_reports(config: PipelineConfig, summary: RunSummary, record_config: bool = False) -> str:
    """Writes the report and the model card of the run `summary` into `<output root>/reports/<run id>/`;
    returns the report's path. With `record_config` (the run writing its own report), `config` is the
    run's effective configuration: recorded there (settings.CONFIG_FILE), and shown by every report of the
    run written later."""
    from pipeline import settings

    directory = report_dir(config, summary.run_id)
    os.makedirs(directory, exist_ok=True)
    recorded = os.path.join(directory, settings.CONFIG_FILE)
    if record_config:
        _write_atomically(recorded, settings.to_yaml(config))
    report = collect(config, summary)
    if os.path.exists(recorded):
        with open(recorded) as f:
            report.configuration = f.read()
    for name, page in ((REPORT_FILE, render_report(report)), (MODEL_CARD_FILE, render_model_card(report))):
        _write_atomically(os.path.join(directory, name), page)
    return os.path.join(directory, REPORT_FILE)


def _write_atomically(path: str, text: str) -> None:
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
