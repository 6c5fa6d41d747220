"""One run per output root: a second run refuses (or waits) with a message naming the holder; a killed run
leaves no stale lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline.run_lock import RunLockedError, run_lock

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_a_second_run_is_refused_naming_the_first(tmp_path):
    with run_lock(str(tmp_path)):
        with pytest.raises(RunLockedError, match=f"another run is using {tmp_path} \\(process {os.getpid()}"):
            with run_lock(str(tmp_path)):
                pass
    with run_lock(str(tmp_path)):  # released: the next run proceeds
        pass


def test_a_second_run_can_wait_for_the_first(tmp_path):
    first = threading.Event()

    def hold():
        with run_lock(str(tmp_path)):
            first.set()
            time.sleep(0.5)

    holder = threading.Thread(target=hold)
    holder.start()
    first.wait(5)
    started = time.monotonic()
    with run_lock(str(tmp_path), wait_s=10, poll_s=0.05):
        waited = time.monotonic() - started
    holder.join()
    assert 0.2 < waited < 5


def test_a_killed_run_leaves_no_stale_lock(tmp_path):
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[2]); from pipeline.run_lock import run_lock\n"
        "with run_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path), str(REPO_ROOT)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout.readline().strip() == "locked"
        with pytest.raises(RunLockedError, match=f"process {process.pid}"):
            with run_lock(str(tmp_path)):
                pass
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    with run_lock(str(tmp_path)):
        pass


@pytest.mark.e2e
def test_the_cli_refuses_a_concurrent_run_in_one_line(tmp_path):
    with run_lock(str(tmp_path)):
        result = subprocess.run(
            [sys.executable, "-m", "pipeline", "run", "--output-root", str(tmp_path), "--train-steps", "10"],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            timeout=300,
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: another run is using {tmp_path}")
    assert not (tmp_path / "metadata.sqlite").exists()  # nothing was started
