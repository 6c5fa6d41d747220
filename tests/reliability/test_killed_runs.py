"""A run killed (SIGKILL, no clean-up possible) during Transform, during the Trainer and during the push: each
next run completes what was left, reuses from the ML Metadata cache what had finished, and the serving
directory never holds anything but complete versions.

One chain of five `python -m pipeline run` processes on one output root, as a user would re-run after a
crash; the kill points are found by watching the run's log file and its output directories.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tfx.utils import path_utils

from components.pusher import INCOMPLETE_PREFIX, model_fingerprint
from pipeline.local_runner import SCRATCH_DIR
from pipeline.run_summary import RunSummary, run_summaries
from pipeline.tasks import task_config
from tests.conftest import DATA_STAGE, REPO_ROOT
from tests.test_cli_e2e import query

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PIPELINE_NAME = task_config("penguin_species").pipeline_name  # the default task `run` runs
# Enough steps that the Trainer is still training well after its first epoch checkpoint.
TRAIN_STEPS = 3000
HELD_PIPE = "held-push.fifo"


@dataclasses.dataclass
class Attempt:
    summary: RunSummary  # what ML Metadata recorded for this run
    log: str  # the run's log file
    returncode: int
    # Every numbered version seen in the serving directory while the run went, and at its end.
    versions_seen: set[str]
    scratch_left: list[str]  # what the run left in the output root's directory of temporary files
    # For a push held mid-copy: the files in its staging directory, and those of the model it was copying.
    staged: tuple[set[str], set[str]] | None = None


def serving_entries(serving: Path) -> list[str]:
    return sorted(os.listdir(serving)) if serving.exists() else []


def attempt(output_root: Path, kill_when=None) -> Attempt:
    """Runs the pipeline in a new process group; `kill_when(group)` is asked every millisecond, and when it
    says yes the whole group is killed with SIGKILL. Returns what the run left."""
    logs = output_root / "logs"
    before = set(os.listdir(logs)) if logs.exists() else set()
    serving = output_root / "serving_model"
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", "--output-root", str(output_root),
         "--train-steps", str(TRAIN_STEPS)],
        cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    seen = set()
    deadline = time.monotonic() + 900
    try:
        while process.poll() is None and time.monotonic() < deadline:
            seen.update(name for name in serving_entries(serving) if name.isdigit())
            if kill_when is not None and kill_when(process.pid):
                os.killpg(process.pid, signal.SIGKILL)
                break
            time.sleep(0.001)
        process.wait(60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    seen.update(name for name in serving_entries(serving) if name.isdigit())
    summary = run_summaries(str(output_root / "metadata.sqlite"), PIPELINE_NAME)[-1]
    [log] = sorted(set(os.listdir(logs)) - before)
    scratch = sorted(os.listdir(output_root / SCRATCH_DIR))
    return Attempt(summary, (logs / log).read_text(errors="replace"), process.returncode, seen, scratch)


def seconds_into(output_dir: Path, seconds: float):
    """True `seconds` after the component writing `output_dir` started executing (its directory exists)."""
    started = {}

    def due(_group) -> bool:
        if "at" not in started and output_dir.exists() and any(output_dir.iterdir()):
            started["at"] = time.monotonic()
        return time.monotonic() - started.get("at", float("inf")) > seconds

    return due


def trainer_checkpointed(output_root: Path):
    """True once the Trainer saved its first epoch checkpoint."""
    checkpoints = output_root / "pipeline" / "Trainer" / "checkpoints"
    return lambda _group: any(checkpoints.glob("*/checkpoint"))


def push_copying(output_root: Path):
    """True once the Pusher is held mid-copy, its staging directory half written.

    A small model is copied in a few milliseconds, which no polling can be sure to see. So the copy is made
    to stop halfway: once this run's serving check has written its last file (the warm-up requests of its
    copy of the model; the Pusher comes next and copies exactly that directory), the run is frozen
    (SIGSTOP) and a named pipe is added to that copy. The Pusher's copy blocks opening the pipe, which has no
    writer, after it made the staging directory and copied some files: the kill lands mid-copy whatever the
    machine's load. The pipe is removed once the run is dead."""
    serving = output_root / "serving_model"
    checks = output_root / "pipeline" / "ServingCheck" / "blessing"
    earlier = set(checks.glob("*"))
    warmup = Path(path_utils.stamped_model_path("")) / "assets.extra" / "tf_serving_warmup_requests"
    held = {}

    def staging() -> list[Path]:
        return [serving / name for name in serving_entries(serving) if name.startswith(INCOMPLETE_PREFIX)]

    def checked() -> list[Path]:
        return [check for check in set(checks.glob("*")) - earlier if (check / warmup).exists()]

    def copying(group: int) -> bool:
        if "pipe" not in held:
            [check] = checked() or [None]
            if check is None:
                return False
            os.killpg(group, signal.SIGSTOP)
            assert not staging() and serving_entries(serving) == [], "the push began before it was held"
            held["pipe"] = check / warmup.parent / HELD_PIPE  # copied after the files above it
            os.mkfifo(held["pipe"])
            os.killpg(group, signal.SIGCONT)
            return False
        # Blocked in the pipe's open(): nothing more is written to the staging directory.
        [stage] = staging() or [None]
        if stage is None:
            return False
        copied = sorted(stage.rglob("*"))
        time.sleep(0.5)
        if copied != sorted(stage.rglob("*")):
            return False
        model = held["pipe"].parent.parent
        held["staged"] = (
            {str(path.relative_to(stage)) for path in copied if path.is_file()},
            {str(path.relative_to(model)) for path in model.rglob("*") if path.is_file()},
        )
        return True

    copying.held = held
    return copying


@pytest.fixture(scope="module")
def output_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("killed")


@pytest.fixture(scope="module")
def chain(output_root) -> dict[str, Attempt]:
    runs = {}
    # Two seconds into Transform's execution: its analyzers are running.
    transform_graph = output_root / "pipeline" / "Transform" / "transform_graph"
    runs["killed_in_transform"] = attempt(output_root, seconds_into(transform_graph, 2.0))
    runs["killed_in_trainer"] = attempt(output_root, trainer_checkpointed(output_root))
    held_push = push_copying(output_root)
    runs["killed_in_push"] = attempt(output_root, held_push)
    os.unlink(held_push.held["pipe"])  # the serving check's copy of the model as it was written
    runs["killed_in_push"].staged = held_push.held["staged"]
    runs["completed"] = attempt(output_root)
    runs["again"] = attempt(output_root)
    return runs


def test_each_kill_landed_where_intended(chain):
    assert chain["killed_in_transform"].returncode == -signal.SIGKILL
    assert chain["killed_in_transform"].summary.node_states["Transform"] == "RUNNING"
    assert "Trainer" not in chain["killed_in_transform"].summary.node_states
    assert chain["killed_in_trainer"].summary.node_states["Trainer"] == "RUNNING"
    assert "Evaluator" not in chain["killed_in_trainer"].summary.node_states
    assert chain["killed_in_push"].summary.node_states["Pusher"] == "RUNNING"
    # Mid-copy: the model's top-level files (its graph among them) were in the staging directory, the rest
    # of it was not.
    staged, model = chain["killed_in_push"].staged
    assert "saved_model.pb" in staged and staged < model, (staged, model)


def test_the_run_after_a_kill_reuses_what_had_finished(chain):
    after_transform = chain["killed_in_trainer"].summary.node_states
    assert {node: after_transform[node] for node in DATA_STAGE} == dict.fromkeys(DATA_STAGE, "CACHED")
    assert after_transform["Transform"] == "COMPLETE"

    after_trainer = chain["killed_in_push"].summary.node_states
    assert after_trainer["Transform"] == "CACHED"
    assert after_trainer["Trainer"] == "COMPLETE"
    # The killed Trainer had saved an epoch checkpoint; its next execution continued from it.
    assert "Resuming from checkpoint" in chain["killed_in_push"].log

    after_push = chain["completed"].summary
    for node in ("Transform", "Trainer"):
        assert after_push.node_states[node] == "CACHED", node
    # The killed run's Evaluator blessed the model, so it is now the latest blessed model, the Evaluator's
    # baseline: a new input, so the Evaluator (and the serving check after it) run again.
    assert after_push.node_states["Evaluator"] == "COMPLETE"
    assert after_push.node_states["Pusher"] == "COMPLETE"
    assert chain["completed"].returncode == 0


def test_temporary_files_a_killed_run_left_are_removed_by_the_next(chain):
    # A killed run cannot clean up: its scratch directory stays until the next run on the root starts.
    for name in ("killed_in_transform", "killed_in_trainer", "killed_in_push"):
        [left] = chain[name].scratch_left
        assert left.startswith("pipeline-run-"), (name, left)
    assert chain["completed"].scratch_left == [] and chain["again"].scratch_left == []


def test_the_serving_directory_only_ever_holds_complete_versions(chain, output_root):
    serving = output_root / "serving_model"
    for name, run in chain.items():
        for version in run.versions_seen:
            assert (serving / version / "saved_model.pb").exists(), (name, version)
    # The push killed mid-copy left its hidden staging directory and no version; the next push cleared it.
    assert chain["killed_in_push"].versions_seen == set()
    assert "left by an interrupted push" in chain["completed"].log
    assert [e for e in serving_entries(serving) if not e.isdigit()] == []
    assert len(serving_entries(serving)) == 1
    served = serving / serving_entries(serving)[0]
    # What the Pusher publishes: the serving check's copy of the model (with warm-up requests).
    checked = path_utils.stamped_model_path(chain["completed"].summary.outputs["ServingCheck"]["blessing"])
    assert model_fingerprint(str(served)) == model_fingerprint(checked)
    figures = query(output_root, "penguins", "species")
    assert figures["accuracy"] >= 0.9


def test_a_run_after_the_recovery_changes_nothing(chain):
    again = chain["again"]
    assert again.returncode == 0
    assert set(again.summary.node_states.values()) <= {"CACHED", "COMPLETE"}
    assert again.summary.pushed_destination is None
    assert again.versions_seen == chain["completed"].versions_seen
