"""One run at a time per output root: two runs writing the same metadata store and serving directory
would race on both. The lock is an advisory `flock` on `<output root>/.run.lock`, released by the
kernel when the process ends, however it ends (a killed run leaves no stale lock)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from pathlib import Path

LOCK_FILE = ".run.lock"


class RunLockedError(RuntimeError):
    """Another run holds the output root."""


@contextlib.contextmanager
def run_lock(output_root: str, wait_s: float = 0.0, poll_s: float = 1.0):
    """Holds the output root's lock for the block; waits up to `wait_s` seconds for another run to finish,
    then raises RunLockedError naming the holder."""
    Path(output_root).mkdir(parents=True, exist_ok=True)
    path = os.path.join(output_root, LOCK_FILE)
    with open(path, "a+") as handle:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "{}"
                    raise RunLockedError(_message(output_root, json.loads(holder))) from None
                time.sleep(poll_s)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def _message(output_root: str, holder: dict) -> str:
    who = f"process {holder['pid']}, started {holder['started']}" if "pid" in holder else "another process"
    return (
        f"another run is using {output_root} ({who}); wait for it to finish (--wait SECONDS), "
        "or pass another --output-root"
    )
