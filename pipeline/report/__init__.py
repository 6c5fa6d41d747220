"""The run report and the model card: one self-contained HTML page each, from what the run stored.

Reading (`reading.py`: ML Metadata and the run's artifacts), plotting (`plots.py`: PNGs embedded in the
page, so it opens anywhere, offline) and rendering (`render.py`: Jinja2 templates in `templates/`, every
value escaped) are separate; `write_reports` puts both pages in `<output root>/reports/<run id>/`, with the
configuration the run recorded. The outcome's sentence is the run summary's own (`RunSummary.outcome`), as
the terminal prints it.
"""

from __future__ import annotations

import os
import re

from pipeline.config import PipelineConfig
from pipeline.report.plots import training_curves
from pipeline.report.reading import (
    Report,
    ReportError,
    collect,
    drift_distances,
    find_run,
    share_without_value,
    thresholds,
)
from pipeline.report.render import MODEL_CARD_FILE, REPORT_FILE, render_model_card, render_report
from pipeline.run_summary import RunSummary

__all__ = [
    "MODEL_CARD_FILE",
    "REPORT_FILE",
    "Report",
    "ReportError",
    "collect",
    "drift_distances",
    "find_run",
    "render_model_card",
    "render_report",
    "report_dir",
    "share_without_value",
    "thresholds",
    "training_curves",
    "write_reports",
]


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
