"""The two stacks (docs/stacks.md): its table states what each lock pins, the newer stack's lock is
current with its pyproject, and `make` refuses the newer stack in one line where its wheels cannot install."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
import tomli

from tests.conftest import REPO_ROOT
from tests.next_stack import uv_binary

# The table's column -> the locked package whose version it states.
COLUMNS = {
    "TFX": "tfx",
    "TensorFlow": "tensorflow",
    "tf-keras": "tf-keras",
    "Beam": "apache-beam",
    "kfp": "kfp",
}


def locked_versions(lock_dir) -> dict[str, str]:
    lock = tomli.loads((lock_dir / "uv.lock").read_text())
    return {package["name"]: package["version"] for package in lock["package"] if "version" in package}


def stacks_table() -> dict[str, dict[str, str]]:
    """The compatibility table's rows by stack name (its first column, without formatting)."""
    page = REPO_ROOT.joinpath("docs", "stacks.md").read_text()
    section = page.split("## Stacks", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[2:]:
        cells = [cell.strip().strip("`*") for cell in line.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header, cells, strict=True))
    return rows


@pytest.mark.parametrize("stack, lock_dir", [("current", REPO_ROOT), ("next", REPO_ROOT / "next")])
def test_the_stacks_table_states_what_each_lock_pins(stack, lock_dir):
    row, locked = stacks_table()[stack], locked_versions(lock_dir)
    for column, package in COLUMNS.items():
        assert row[column] == locked[package], (stack, column)
    python = (lock_dir / ".python-version").read_text().strip()
    assert row["Python"] == ".".join(python.split(".")[:2])


def test_the_newer_stacks_lock_is_current_with_its_pyproject():
    done = subprocess.run(
        [uv_binary(), "lock", "--check", "--offline", "--project", "next", "--python", "3.11"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def glibc() -> tuple[int, ...]:
    return tuple(int(part) for part in os.confstr("CS_GNU_LIBC_VERSION").split()[1].split("."))


@pytest.mark.skipif(glibc() >= (2, 39), reason="this system's glibc installs the newer stack's wheels")
def test_the_newer_stack_is_refused_in_one_line_where_its_wheels_cannot_install(tmp_path):
    venv = tmp_path / "venv"
    done = subprocess.run(
        ["make", "--no-print-directory", "setup", "STACK=next", f"VENV={venv}"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    version = ".".join(map(str, glibc()))
    assert (
        f"error: STACK=next needs glibc 2.39 or newer (its TFX 1.21 wheels are manylinux_2_39); this system "
        f"has {version}: run it in a Debian 13 root with make test-next" in done.stdout + done.stderr
    )
    assert not venv.exists()


def test_an_unknown_stack_is_refused_in_one_line():
    done = subprocess.run(["make", "setup", "STACK=2.0"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode != 0
    assert re.search(r"STACK=2\.0: expected current or next", done.stderr)
