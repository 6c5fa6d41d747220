"""The whole pipeline with Beam's DirectRunner in `multi_processing` mode, given as runner options with `run
--beam-arg` (`--beam-workers N` is shorthand for the same two options, tests/test_cli.py): the same outcome
as the default `in_memory` mode, and every Beam component ran in the worker processes the options asked
for."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.local_runner import SCRATCH_DIR
from pipeline.run_summary import latest_run
from pipeline.tasks import task_config
from tests.test_cli_e2e import PACKAGING_TFX, cli, query

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# The Beam pipelines of the run: CsvExampleGen, StatisticsGen, Transform (analysis) and the Evaluator.
BEAM_COMPONENTS = ("CsvExampleGen", "StatisticsGen", "Transform", "Evaluator")
WORKERS = 2
# What each of Beam's SDK worker processes logs on start: the pipeline options it was given.
WORKER_OPTIONS = re.compile(
    r"Worker: .*Pipeline_options: \{\\'direct_num_workers\\': (\d+), \\'direct_running_mode\\': \\'(\w+)\\'"
)


@pytest.fixture(scope="module")
def multi_processing_run(tmp_path_factory):
    output_root = tmp_path_factory.mktemp("multi_processing")
    temp = tmp_path_factory.mktemp("temp")
    result = cli(
        "run", "--output-root", str(output_root), "--beam-arg=--direct_running_mode=multi_processing",
        f"--beam-arg=--direct_num_workers={WORKERS}", env={"TMPDIR": str(temp)},
    )  # fmt: skip
    return output_root, result, temp


def test_a_multi_processing_run_is_blessed_pushed_and_serves(multi_processing_run):
    output_root, result, _ = multi_processing_run
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    assert "Blessed and pushed" in result.stdout
    summary = latest_run(str(output_root / "metadata.sqlite"), task_config("penguin_species").pipeline_name)
    assert set(summary.node_states.values()) == {"COMPLETE"}
    assert query(output_root, "penguins", "species")["accuracy"] >= 0.9


def component_logs(text: str) -> dict[str, str]:
    """Each component's part of the run log, from LocalDagRunner's `Component X is running.` to the next."""
    parts = re.split(r"^.*Component (\S+) is running\.$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_beam_component_ran_in_the_worker_processes_the_options_asked_for(multi_processing_run):
    output_root, _, _ = multi_processing_run
    [log] = list(Path(output_root, "logs").iterdir())
    parts = component_logs(log.read_text(errors="replace"))
    for component in BEAM_COMPONENTS:
        started = WORKER_OPTIONS.findall(parts[component])
        # One line per worker process, each holding the options the run was given.
        assert started == [(str(WORKERS), "multi_processing")] * WORKERS, (component, started)
    # The components without a Beam pipeline started no workers.
    assert not WORKER_OPTIONS.findall(parts["Trainer"] + parts["Pusher"])


def test_the_run_removes_its_temporary_files(multi_processing_run):
    """Given Beam arguments, each Beam component packages TFX (49 MB) into a new temporary directory and
    leaves it: inside the run's scratch directory (under the output root), removed when the run ends."""
    output_root, _, temp = multi_processing_run
    [log] = list(Path(output_root, "logs").iterdir())
    text = log.read_text(errors="replace")
    packaged = [line for line in text.splitlines() if "Added --extra_package=" in line]
    assert PACKAGING_TFX in text and len(packaged) == len(BEAM_COMPONENTS)
    assert all(f"--extra_package={output_root / SCRATCH_DIR}/pipeline-run-" in line for line in packaged)
    assert list((output_root / SCRATCH_DIR).iterdir()) == [] and list(temp.iterdir()) == []
