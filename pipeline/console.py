"""What the user sees while a run goes: one line per component, the raw logs in a file."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import time
from typing import TextIO

from absl import logging as absl_logging

# LocalDagRunner says "Component X is running.", BeamDagRunner "node X is running.".
_EVENT = re.compile(r"^(?:Component|node) (\S+) is (running|finished)\.$")
_LOG_FORMAT = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


class ComponentProgress(logging.Handler):
    """Turns the orchestrators' log lines into a progress line per component, with its duration."""

    def __init__(self, out: TextIO):
        super().__init__(level=logging.INFO)
        self.out = out
        self.started: dict[str, float] = {}
        self.durations: dict[str, float] = {}
        self.interactive = out.isatty()

    @property
    def unfinished(self) -> list[str]:
        """Components that started and never finished: after an error, the one that failed."""
        return list(self.started)

    def emit(self, record: logging.LogRecord) -> None:
        match = _EVENT.match(record.getMessage())
        if not match:
            return
        node, event = match.groups()
        if event == "running":
            self.started[node] = time.monotonic()
            if self.interactive:
                self.out.write(f"  {node:<32} running...")
                self.out.flush()
            return
        self.durations[node] = time.monotonic() - self.started.pop(node, time.monotonic())
        line = f"  {node:<32} {self.durations[node]:6.1f} s"
        # On a terminal, overwrite the "running..." line in place.
        self.out.write(f"\r{line:<48}\n" if self.interactive else f"{line}\n")
        self.out.flush()


@contextlib.contextmanager
def captured_output(log_path: str, quiet: bool = True):
    """Sends everything written to stdout/stderr, TensorFlow's C++ logs and Beam's included, to `log_path`.

    Yields (out, err, progress): streams to the real stdout and stderr, and the progress handler. With
    `quiet=False` the logs stay on the terminal and are copied to the file.
    """
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    absl_logging.set_verbosity(absl_logging.INFO)
    sys.stdout.flush()
    sys.stderr.flush()
    if not quiet:
        handler = logging.FileHandler(log_path)
        handler.setFormatter(_LOG_FORMAT)
        progress = ComponentProgress(sys.stdout)
        root.addHandler(handler)
        root.addHandler(progress)
        try:
            yield sys.stdout, sys.stderr, progress
        finally:
            root.removeHandler(handler)
            root.removeHandler(progress)
        return

    saved_out, saved_err = os.dup(1), os.dup(2)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    console = os.fdopen(os.dup(saved_out), "w", buffering=1)
    errors = os.fdopen(os.dup(saved_err), "w", buffering=1)
    progress = ComponentProgress(console)
    # Python logging (TFX, absl, Beam) into the log file, now behind stderr.
    to_log = logging.StreamHandler(sys.stderr)
    to_log.setFormatter(_LOG_FORMAT)
    root.addHandler(to_log)
    root.addHandler(progress)
    try:
        yield console, errors, progress
    finally:
        root.removeHandler(progress)
        root.removeHandler(to_log)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        os.close(saved_out)
        os.close(saved_err)
        console.close()
        errors.close()
