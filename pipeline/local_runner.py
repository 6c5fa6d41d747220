"""Runs the pipeline on this machine: TFX's LocalDagRunner or BeamDagRunner, a SQLite ML Metadata store."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from absl import logging

from pipeline.config import PipelineConfig
from pipeline.csv_check import check_data
from pipeline.data import write_bundled_data
from pipeline.images import check_images
from pipeline.inference.records import check_examples
from pipeline.pipeline import create_pipeline
from pipeline.run_lock import run_lock
from pipeline.run_summary import RunSummary, latest_run, previous_span_statistics, removed_artifacts
from pipeline.spans import with_latest_spans
from pipeline.storage.filesystems import register_s3, use_s3
from pipeline.storage.metadata import bind_pipeline_root, redacted_logs

ORCHESTRATORS = ("local", "beam")
SCRATCH_DIR = "tmp"  # under the output root: the runs' temporary files, removed after each


def run_pipeline(
    config: PipelineConfig,
    orchestrator: str = "local",
    wait_s: float = 0.0,
    notify: Callable[[str], object] = logging.warning,
) -> RunSummary:
    """Runs every component (reusing cached ones) and returns what the run did.

    `local` runs the components one after another in this process (LocalDagRunner); `beam` runs the DAG as
    an Apache Beam pipeline (BeamDagRunner), here on Beam's DirectRunner. One run at a time per output
    root: another run's lock is waited for up to `wait_s` seconds, then RunLockedError. What the run does
    about earlier runs' lost files is said, one line each, to `notify`. Temporary files go to
    `<output root>/tmp/`, removed when the run ends (what a killed run left there, by the next run).
    """
    if orchestrator not in ORCHESTRATORS:
        raise ValueError(f"orchestrator must be one of {', '.join(ORCHESTRATORS)}, got {orchestrator!r}")
    with run_lock(config.state_root, wait_s):
        scratch_parent = os.path.join(config.state_root, SCRATCH_DIR)
        shutil.rmtree(scratch_parent, ignore_errors=True)  # a killed run's; the lock says none is running
        with scratch_temp_dir(scratch_parent):
            return _run(config, orchestrator, notify)


@contextmanager
def scratch_temp_dir(parent: str | None = None) -> Iterator[str]:
    """Points the run's temporary files (this process and the Beam workers it starts) at one new directory
    under `parent` (default: the system's) and removes it when the run ends. Components leave theirs
    behind: TFX's Beam executors, given Beam arguments, package TFX itself for remote workers (49 MB each
    time); autograph its generated modules."""
    if parent is not None:
        Path(parent).mkdir(parents=True, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="pipeline-run-", dir=parent)
    saved_env, saved_dir = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"], tempfile.tempdir = scratch, scratch
    try:
        yield scratch
    finally:
        tempfile.tempdir = saved_dir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
        shutil.rmtree(scratch, ignore_errors=True)


def set_aside_orphans(config: PipelineConfig) -> str | None:
    """Artifacts without the metadata store that knew them (a new store would number its artifacts from 1
    again and collide with the old directories) are moved to `pipeline.orphaned-<time>`, nothing deleted.
    Returns where, or None when there was nothing to move."""
    if "://" in config.pipeline_root:
        return None  # a bucket's artifacts keep their run's directories; nothing collides there
    root = Path(config.pipeline_root)
    if config.metadata_store.exists() or not root.is_dir() or not any(root.iterdir()):
        return None
    aside = f"{config.pipeline_root}.orphaned-{time.strftime('%Y%m%d-%H%M%S')}"
    os.rename(config.pipeline_root, aside)
    return aside


def _run(config: PipelineConfig, orchestrator: str, notify: Callable[[str], object]) -> RunSummary:
    if config.s3:
        use_s3(config.s3)
        register_s3()
    if config.uses_default_data:
        write_bundled_data(config)
    config = with_latest_spans(config)
    if config.span_range is not None and config.drift_baseline is None:
        previous = previous_span_statistics(config.metadata_store, config.pipeline_name, config.span_range[0])
        config = config.replace(drift_baseline=previous)
    import tensorflow_data_validation as tfdv

    if config.images is not None:
        check_images(config.data_dir, config.images, config.span_range)
        if config.inference_data:
            check_examples(config.inference_data, config.images, config.served_without)
    else:
        schema = tfdv.load_schema_text(config.schema_path)
        check_data(config.data_dir, schema, config.span_range)
        if config.inference_data:  # the label is not required (the schema's SERVING environment)
            check_data(config.inference_data, schema)
    aside = set_aside_orphans(config)
    if aside:
        notify(
            f"Note: {config.metadata_store} is gone but {config.pipeline_root} held artifacts; they were "
            f"moved to {aside} (delete it when you do not need it) and this run starts a fresh metadata store"
        )
    removed = removed_artifacts(config.metadata_store, config.pipeline_name) if config.enable_cache else []
    if removed:
        # Cached results whose files are gone cannot be reused: recompute everything once.
        config = config.replace(enable_cache=False)
        notify(
            f"Note: {len(removed)} output director{'y' if len(removed) == 1 else 'ies'} of the last run "
            f"{'was' if len(removed) == 1 else 'were'} removed (e.g. {removed[0]}); this run recomputes "
            "every component instead of reusing the cache"
        )
    Path(config.state_root).mkdir(parents=True, exist_ok=True)
    store = config.metadata_store
    if config.metadata is not None:  # a store that may be shared: one output root per pipeline name
        bind_pipeline_root(store, config.pipeline_name, config.pipeline_root)
    pipeline = create_pipeline(config, store.connection_config())
    before = latest_run(store, config.pipeline_name) if store.exists() else None
    try:
        # TFX's runners log the connection config they are given, password included.
        with redacted_logs(store):
            if orchestrator == "beam":
                from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

                BeamDagRunner().run(pipeline)
            else:
                from tfx.orchestration.local.local_dag_runner import LocalDagRunner

                LocalDagRunner().run(pipeline)
    except Exception as error:
        # A run stopped by a gate or a failure gets its report too: what it saw and where it stopped.
        error.report = _report(config, latest_run(store, config.pipeline_name), before, notify)
        raise
    summary = latest_run(store, config.pipeline_name)
    summary.report = _report(config, summary, before, notify)
    return summary


def _report(config: PipelineConfig, latest, before, notify: Callable[[str], object]) -> str | None:
    """Writes the run report and model card of `latest`, the run just made (none if it recorded no run:
    `latest` is still `before`)."""
    from pipeline.report import write_reports

    if latest is None or (before is not None and latest.run_id == before.run_id):
        return None
    try:
        return write_reports(config, latest, record_config=True)
    except Exception as error:  # noqa: BLE001 - the run's own outcome matters more than its report
        notify(f"Note: the run report could not be written: {type(error).__name__}: {error}")
        return None
