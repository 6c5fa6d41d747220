"""Batch inference: rows per second and peak memory of the whole `python -m pipeline predict` command
(imports, the CSV check, the Beam scoring job and the output file), on generated rows of the penguins table.

    .venv/bin/python -m bench.batch_inference --rows 100000 1000000 --repeats 3     (part of: make bench)

A model is trained and pushed first (`python -m pipeline run`, the species task, into a scratch output
root); every measurement then scores `--rows` generated rows (`pipeline.data.write_generated_penguins`, the
label column dropped) with the served version, in_memory, in a fresh process. Peak memory is the command's
maximum resident set (its rusage: in_memory Beam runs in that process). Writes its section of
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.results import environment, spread, write_section

TITLE = "Batch inference (`python -m bench.batch_inference`)"


def timed_predict(data_root: Path, output: Path, output_root: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of one `predict` command."""
    command = [
        sys.executable, "-m", "pipeline", "predict", "--data-root", str(data_root), "--output", str(output),
        "--task", "penguin_species", "--output-root", str(output_root),
    ]  # fmt: skip
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"predict failed: {process.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from pipeline.data import write_generated_penguins

    with tempfile.TemporaryDirectory(prefix="bench-inference-") as scratch:
        root = Path(scratch)
        subprocess.run(
            [sys.executable, "-m", "pipeline", "run", "--output-root", str(root / "out")],
            check=True,
            capture_output=True,
        )
        results = {}
        for rows in args.rows:
            data = root / f"rows-{rows}"
            path = write_generated_penguins(data / "rows.csv", rows, seed=7)
            import pandas as pd

            pd.read_csv(path, dtype=str, keep_default_na=False).drop(columns=["species"]).to_csv(
                path, index=False
            )
            runs = [
                timed_predict(data, root / f"predictions-{rows}.csv", root / "out")
                for _ in range(args.repeats)
            ]
            results[rows] = runs
            print(f"{rows} rows: {[f'{w:.1f} s, {m:.0f} MiB' for w, m in runs]}", flush=True)

    lines = [
        environment(),
        "- `python -m pipeline predict` on generated rows of the penguins table without the label, scored by "
        "the species classifier's served version (trained and pushed first by `python -m pipeline run`), "
        "in_memory; wall time of the whole command (imports, the CSV check, the Beam job, the output file); "
        "peak RSS of the command. Medians; ranges where n > 1.",
        "",
        "| rows | wall (s) | rows/s | peak RSS (MiB) |",
        "|---|---|---|---|",
    ]
    for rows, runs in results.items():
        walls, peaks = [w for w, _ in runs], [m for _, m in runs]
        rate = rows / statistics.median(walls)
        lines.append(f"| {rows:,} | {spread(walls)} | {rate:,.0f} | {spread(peaks, 0)} |")
    if len(results) > 1:
        (small, small_runs), (large, large_runs) = list(results.items())[0], list(results.items())[-1]
        ratio = statistics.median(m for _, m in large_runs) / statistics.median(m for _, m in small_runs)
        lines += ["", f"- Peak memory at {large:,} rows is {ratio:.2f}x that at {small:,} rows."]
    write_section(TITLE, "\n".join(lines))


if __name__ == "__main__":
    main()
