"""tests/peak_memory.py charges a command its own peak memory, not that of the process starting it (the
launcher-level test's per-task memory check rests on it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).with_name("peak_memory.py")
ALLOCATE = "b = bytearray({mib} << 20); b[::4096] = b'x' * len(b[::4096])"


def peak_mib(tmp_path: Path, code: str) -> tuple[int, float]:
    out = tmp_path / "peak"
    status = subprocess.call([sys.executable, str(SCRIPT), str(out), sys.executable, "-c", code])
    return status, int(out.read_text()) / 1024


def test_a_command_is_charged_its_own_peak_not_its_starters(tmp_path):
    held = bytearray(600 << 20)
    held[::4096] = b"x" * len(held[::4096])  # this process holds 600 MiB while the command runs
    status, small = peak_mib(tmp_path, "pass")
    assert status == 0 and small < 100
    status, large = peak_mib(tmp_path, ALLOCATE.format(mib=300))
    assert status == 0 and 300 < large < 400
    del held


def test_the_commands_exit_status_and_signals_come_through(tmp_path):
    assert peak_mib(tmp_path, "raise SystemExit(3)")[0] == 3
    assert peak_mib(tmp_path, "import os, signal; os.kill(os.getpid(), signal.SIGABRT)")[0] == 134
