"""bench/RESULTS.md: one section per benchmark, each rewritten by its own script with the machine, the
versions and the date of its measurement."""

from __future__ import annotations

import os
import platform
import re
import statistics
import time
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = "# Benchmark results\n\nWritten by `make bench` (each section by the script it names).\n"
PACKAGES = (
    "tfx",
    "tensorflow",
    "tf-keras",
    "apache-beam",
    "tensorflow-transform",
    "tensorflow-model-analysis",
)


def environment() -> str:
    """Machine, versions and date, as the first lines of a section."""
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in PACKAGES)
    return (
        f"- Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}\n"
        f"- Versions: {versions}\n"
        f"- Measured: {time.strftime('%Y-%m-%d')}\n"
    )


def spread(values: list[float], digits: int = 1) -> str:
    """'median (min-max, n=N)', or the one value."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return (
        f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f}, "
        f"n={len(values)})"
    )


def component_table(columns: list[str], seconds: list[dict[str, float]]) -> list[str]:
    """A markdown table of seconds per component: a row per component (the first column's order), a column
    per measurement."""
    lines = ["| component | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for node in seconds[0]:
        lines.append(f"| {node} | " + " | ".join(f"{column.get(node, 0.0):.1f}" for column in seconds) + " |")
    return lines


def write_section(title: str, body: str) -> None:
    """Replaces the section `## title` of RESULTS.md with `body` (appends it when there is none)."""
    text = RESULTS.read_text() if RESULTS.exists() else HEADER
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + section
    RESULTS.write_text(text)
