"""Runs the pipeline on this machine with TFX's LocalDagRunner and a SQLite ML Metadata store."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from absl import logging as absl_logging
from tfx.orchestration import metadata
from tfx.orchestration.local.local_dag_runner import LocalDagRunner

from pipeline.config import PipelineConfig
from pipeline.data import write_penguins_csv
from pipeline.pipeline import create_pipeline
from pipeline.run_summary import RunSummary, latest_run


def log_to_file(config: PipelineConfig) -> Path:
    """Sends the full TFX/Beam/TensorFlow log of this process to a new file under `logs/`."""
    log_dir = Path(config.logs_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"run-{time.strftime('%Y%m%d-%H%M%S')}.log"
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    absl_logging.set_verbosity(absl_logging.INFO)
    return path


def run_pipeline(config: PipelineConfig) -> RunSummary:
    """Runs every component (reusing cached ones) and returns what the run did."""
    if config.uses_default_data:
        write_penguins_csv(config.data_dir)
    Path(config.output_root).mkdir(parents=True, exist_ok=True)
    connection = metadata.sqlite_metadata_connection_config(config.metadata_path)
    LocalDagRunner().run(create_pipeline(config, connection))
    return latest_run(config.metadata_path, config.pipeline_name)
