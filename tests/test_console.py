"""Progress lines from the orchestrators' log records, and the capture of raw output into the log file."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys

from pipeline.console import ComponentProgress


def record(message: str) -> logging.LogRecord:
    return logging.LogRecord("absl", logging.INFO, __file__, 1, message, None, None)


def test_one_line_per_finished_component_and_the_unfinished_one_is_known():
    out = io.StringIO()
    progress = ComponentProgress(out)
    for message in [
        "Component CsvExampleGen is running.",
        "Some other log line",
        "Component CsvExampleGen is finished.",
        "node Trainer is running.",  # BeamDagRunner's wording
    ]:
        progress.emit(record(message))
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].split()[0] == "CsvExampleGen" and lines[0].endswith(" s")
    assert set(progress.durations) == {"CsvExampleGen"}
    assert progress.unfinished == ["Trainer"]


def test_raw_output_of_the_process_and_its_children_goes_to_the_log(tmp_path):
    log = tmp_path / "logs" / "run.log"
    code = f"""
import logging, os, subprocess, sys
from pipeline.console import captured_output
with captured_output({str(log)!r}) as (out, err, progress):
    print("raw stdout")
    os.write(2, b"raw fd 2\\n")
    subprocess.run([sys.executable, "-c", "print('child output')"])
    logging.getLogger("absl").info("an info record")
    out.write("for the user\\n")
    err.write("error: for the user too\\n")
print("after")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["for the user", "after"]
    assert result.stderr.strip() == "error: for the user too"
    text = log.read_text()
    for expected in ("raw stdout", "raw fd 2", "child output", "an info record"):
        assert expected in text
