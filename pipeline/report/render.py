"""The report's pages from Jinja2 templates (templates/): the environment escapes every value, so markup in a
user's data (a column named `<script>`, a category `a & b`) stays text by construction. What a page shows
is prepared here as rows of plain values; the templates hold the markup."""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

from pipeline.config import PipelineConfig
from pipeline.report.plots import slice_chart, training_curves
from pipeline.report.reading import Report

REPORT_FILE = "report.html"
MODEL_CARD_FILE = "model_card.html"
# A slice with fewer evaluation examples than this gives a rough estimate; the model card says so.
SMALL_SLICE = 50
TEMPLATES = Path(__file__).parent / "templates"


@functools.cache
def environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def fmt(value, name: str = "") -> str:
    if name.endswith("example_count") and isinstance(value, float):
        return str(int(value))
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def gated_metric(report: Report) -> str | None:
    overall = report.overall
    if overall is None:
        return None
    for name in ("sparse_categorical_accuracy", "pair_accuracy", "root_mean_squared_error"):
        matches = [m for m in overall.candidate if m.rsplit("/", 1)[-1] == name]
        if matches:
            return matches[0]
    return None


def _data(report: Report) -> dict:
    header = ["feature", "type", "missing", "values"]
    rows = [[f.name, f.kind, f"{100 * f.missing:.1f}%", f.values] for f in report.features]
    if report.drift_baseline:
        header.append("drift vs previous span")
        rows = [row + [f.drift] for row, f in zip(rows, report.features, strict=True)]
    return {"header": header, "rows": rows}


def _training(report: Report) -> dict:
    state = report.summary.node_states.get("Trainer", "")
    training = report.training
    if training is None:
        return {"state": state}
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
    last = [[k, fmt(v[-1])] for k, v in training["history"].items() if v]
    return {"state": state, "rows": rows, "curves": training_curves(training["history"]), "last": last}


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


def _evaluation(report: Report) -> dict:
    overall = report.overall
    names = sorted(overall.candidate) if overall else []
    has_baseline = bool(overall and overall.baseline)
    rows = []
    for name in names:
        row = [name, fmt(overall.candidate[name], name)]
        if has_baseline:
            base = overall.baseline.get(name)
            row += [
                fmt(base, name) if base is not None else "",
                fmt(overall.candidate[name] - base, name) if base is not None else "",
            ]
        rows.append(row)
    sliced = [s for s in report.slices if s.name != "overall"]
    metric_names = sorted({m for s in sliced for m in s.candidate})
    gated = gated_metric(report)
    return {
        "header": ["metric (overall)", "candidate"] + (["baseline", "change"] if has_baseline else []),
        "rows": rows,
        "has_baseline": has_baseline,
        "slice_header": ["slice"] + metric_names,
        "sliced": [[s.name] + [fmt(s.candidate.get(m, ""), m) for m in metric_names] for s in sliced],
        "gated": gated or "",
        "chart": slice_chart(report.slices, gated) if gated and sliced else None,
    }


def _deployment(report: Report) -> str:
    summary = report.summary
    if summary.pushed_destination:
        return (
            f"Pushed: version {os.path.basename(summary.pushed_destination)} at {summary.pushed_destination}"
        )
    if summary.already_served:
        return f"Not pushed again: the same model is served as {summary.already_served}"
    return "Not pushed: the served model is unchanged"


def _lineage(report: Report) -> dict:
    summary = report.summary
    return {
        "artifacts": [
            [f"{node}.{key}", uri]
            for node, outputs in sorted(summary.outputs.items())
            for key, uri in sorted(outputs.items())
        ],  # fmt: skip
        "states": [
            [node, state, f"{summary.seconds.get(node, 0):.1f} s"]
            for node, state in summary.node_states.items()
        ],  # fmt: skip
    }


def render_report(report: Report) -> str:
    return (
        environment()
        .get_template("report.html.j2")
        .render(
            title=f"Run report: {report.config.pipeline_name}",
            report=report,
            good=bool(report.summary.blessed and not report.stopped_at),
            written=time.strftime("%Y-%m-%d %H:%M:%S"),
            model_card_file=MODEL_CARD_FILE,
            data=_data(report),
            training=_training(report),
            evaluation=_evaluation(report) if report.slices else {},
            deployment=_deployment(report),
            lineage=_lineage(report),
        )
    )


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
        "detected unless the data comes in spans, which the drift gate compares."
    )
    if report.thresholds:
        notes.append("The gate checks the overall slice only; per-slice figures are reported, not gated.")
    if not report.summary.blessed:
        notes.append("This model was not blessed and is not served.")
    return notes


def render_model_card(report: Report) -> str:
    config = report.config
    training = report.training or {}
    names = sorted({m for s in report.slices for m in s.candidate})
    return (
        environment()
        .get_template("model_card.html.j2")
        .render(
            title=f"Model card: {config.pipeline_name}",
            report=report,
            details=[
                ["model", training.get("model", "not trained in this run")],
                ["task", ", ".join(f"{label}: {task}" for label, task in config.labels.items())],
                ["run", report.summary.run_id],
                ["decision", report.outcome],
                ["code fingerprint", report.lineage.get("code fingerprint", "")],
            ],
            intended_use=intended_use(config),
            inputs=[f.name for f in report.features if f.name not in config.served_without],
            labels=config.served_without,
            metrics={
                "header": ["slice"] + names,
                "rows": [[s.name] + [fmt(s.candidate.get(m, ""), m) for m in names] for s in report.slices],
            },
            limitations=limitations(report),
            report_file=REPORT_FILE,
        )
    )
