"""Wall time of a whole local run (`python -m pipeline`), cold and warm, as a user sees it.

    .venv/bin/python -m bench.local_run --repeats 3     (or: make bench)

Each repetition runs the pipeline twice in fresh processes: cold (empty output root) and warm (the same
root again: everything up to the Evaluator cached, no new data). Import time is included; it is part of
what every run costs. Writes the figures to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")
PACKAGES = (
    "tfx",
    "tensorflow",
    "tf-keras",
    "apache-beam",
    "tensorflow-transform",
    "tensorflow-model-analysis",
)


def timed_run(output_root: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--output-root", output_root],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def describe(times: list[float]) -> str:
    spread = f"min {min(times):.1f}, max {max(times):.1f}, n={len(times)}"
    return f"median {statistics.median(times):.1f} s ({spread})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    cold, warm = [], []
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="bench-local-") as root:
            cold.append(timed_run(root))
            warm.append(timed_run(root))
        print(f"repeat {i + 1}: cold {cold[-1]:.1f} s, warm {warm[-1]:.1f} s", flush=True)

    versions = ", ".join(f"{p} {metadata.version(p)}" for p in PACKAGES)
    RESULTS.write_text(
        "# Benchmark results\n\n"
        "## End-to-end local run (`python -m bench.local_run`)\n\n"
        f"- Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}\n"
        f"- Versions: {versions}\n"
        f"- Measured: {time.strftime('%Y-%m-%d')}\n"
        "- Default task (penguin_species: 344 rows, WideAndDeep, 300 training steps), Beam in_memory, "
        "whole-process wall time\n\n"
        "| run | wall time |\n|---|---|\n"
        f"| cold (empty output root) | {describe(cold)} |\n"
        f"| warm (cached, no new data) | {describe(warm)} |\n"
    )
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
