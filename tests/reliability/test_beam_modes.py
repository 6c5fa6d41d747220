"""The whole pipeline with Beam's DirectRunner in `multi_processing` mode (2 worker processes), as
`python -m pipeline run --beam-workers 2` runs it: the same outcome as the default `in_memory` mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.local_runner import SCRATCH_DIR
from pipeline.run_summary import latest_run
from pipeline.tasks import task_config
from tests.test_cli_e2e import PACKAGING_TFX, cli, query

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# The Beam pipelines of the run: CsvExampleGen, StatisticsGen, Transform (analysis) and the Evaluator.
BEAM_COMPONENTS = 4


@pytest.fixture(scope="module")
def multi_processing_run(tmp_path_factory):
    output_root = tmp_path_factory.mktemp("multi_processing")
    temp = tmp_path_factory.mktemp("temp")
    result = cli("run", "--output-root", str(output_root), "--beam-workers", "2", env={"TMPDIR": str(temp)})
    return output_root, result, temp


def test_a_multi_processing_run_is_blessed_pushed_and_serves(multi_processing_run):
    output_root, result, _ = multi_processing_run
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    assert "Blessed and pushed" in result.stdout
    summary = latest_run(str(output_root / "metadata.sqlite"), task_config("penguin_species").pipeline_name)
    assert set(summary.node_states.values()) == {"COMPLETE"}
    assert query(output_root, "penguins", "species")["accuracy"] >= 0.9


def test_the_beam_stages_ran_in_worker_processes(multi_processing_run):
    output_root, _, _ = multi_processing_run
    [log] = list(Path(output_root, "logs").iterdir())
    text = log.read_text(errors="replace")
    assert "--direct_running_mode=multi_processing" in text
    # Each Beam pipeline started gRPC servers for its worker processes (in_memory runs start none).
    assert text.count("starting control server on port") >= BEAM_COMPONENTS


def test_the_run_removes_its_temporary_files(multi_processing_run):
    """Given Beam arguments, each Beam component packages TFX (49 MB) into a new temporary directory and
    leaves it: inside the run's scratch directory (under the output root), removed when the run ends."""
    output_root, _, temp = multi_processing_run
    [log] = list(Path(output_root, "logs").iterdir())
    text = log.read_text(errors="replace")
    packaged = [line for line in text.splitlines() if "Added --extra_package=" in line]
    assert PACKAGING_TFX in text and len(packaged) == BEAM_COMPONENTS
    assert all(f"--extra_package={output_root / SCRATCH_DIR}/pipeline-run-" in line for line in packaged)
    assert list((output_root / SCRATCH_DIR).iterdir()) == [] and list(temp.iterdir()) == []
