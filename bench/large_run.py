"""A whole run on many rows, as a user starts it: `python -m pipeline run --data-root DIR --schema FILE` (the
CLI's CSV check, the data stage, training, evaluation, the serving check, the push), in_memory, on generated
rows of the penguins table with its bundled schema; wall time of the command, its peak memory (the command
and every process it starts, sampled ten times a second), seconds per component (the CLI's progress lines),
and how time grows with rows.

    .venv/bin/python -m bench.large_run --rows 1000000 10000000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

from bench.data_stage import sampled_run
from bench.local_run import _PROGRESS
from bench.results import component_table, environment, write_section
from pipeline.config import DEFAULT_SCHEMA as SCHEMA

TITLE = "Large runs (`python -m bench.large_run`)"


def measure(
    rows: int, seed: int = 0, root: str | None = None, pipeline_name: str | None = None, extra: tuple = ()
) -> dict:
    """Generates `rows` rows (unless `root` holds them already) and runs the CLI on them with the options
    `extra`, everything under `root` (default: a temporary directory, removed after): data in `data/`, the
    run's output root `outputs/`."""
    from pipeline.data import write_generated_penguins

    with contextlib.nullcontext(root) if root else tempfile.TemporaryDirectory(prefix="bench-large-") as root:
        data_root = os.path.join(root, "data")
        if not os.path.exists(os.path.join(data_root, "penguins.csv")):
            write_generated_penguins(os.path.join(data_root, "penguins.csv"), rows, seed)
        command = [
            sys.executable, "-m", "pipeline", "run", "--data-root", data_root, "--schema", str(SCHEMA),
            "--output-root", os.path.join(root, "outputs"),
            *(["--pipeline-name", pipeline_name] if pipeline_name else []), *extra,
        ]  # fmt: skip
        with open(os.path.join(root, "stdout"), "w") as out, open(os.path.join(root, "stderr"), "w") as err:
            run = sampled_run(command, out, err)
        stdout = Path(root, "stdout").read_text()
        if run.status != 0:
            stderr = Path(root, "stderr").read_text()
            raise RuntimeError(f"the run failed on {rows:,} rows:\n{stdout[-2000:]}\n{stderr[-3000:]}")
    components = {node: float(seconds) for node, seconds in _PROGRESS.findall(stdout)}
    return {
        "rows": rows,
        "wall_s": run.wall_s,
        "peak_rss_mib": run.peak_bytes / 2**20,
        "components": components,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    args = parser.parse_args()
    results = []
    for rows in args.rows:
        results.append(measure(rows))
        print(json.dumps(results[-1]), flush=True)
    write_section(TITLE, report(results))


def report(results: list[dict]) -> str:
    lines = [
        environment(),
        "- `python -m pipeline run --data-root DIR --schema schemas/penguins/schema.pbtxt` on generated rows "
        "of the penguins table (`pipeline.data.generate_penguins`), in_memory, the default 300 training "
        "steps, a fresh output root; one run per size. Peak RSS: the command and every process it starts, "
        "sampled every 0.1 s.\n",
        "| rows | wall (s) | rows/s | peak RSS (MiB) |",
        "|---|---|---|---|",
    ]
    for r in results:
        rate = r["rows"] / r["wall_s"]
        lines.append(f"| {r['rows']:,} | {r['wall_s']:.1f} | {rate:,.0f} | {r['peak_rss_mib']:,.0f} |")
    lines += ["", "Seconds per component (the CLI's progress lines):", ""]
    lines += [*component_table([f"{r['rows']:,}" for r in results], [r["components"] for r in results]), ""]
    for smaller, larger in zip(results, results[1:], strict=False):
        factor = larger["rows"] / smaller["rows"]
        lines.append(
            f"- {larger['rows']:,} rows take {larger['wall_s'] / smaller['wall_s']:.2f}x the time of "
            f"{smaller['rows']:,} ({factor:.0f}x the rows; linear within 1.2x means at most "
            f"{1.2 * factor:.0f}x)"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
