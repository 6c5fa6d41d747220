"""Wall time of a whole local run (`python -m pipeline run`), cold and warm, as a user sees it, with the
time per component and the import time, beside TFX's own penguin example.

    .venv/bin/python -m bench.local_run --repeats 3     (part of: make bench)

Each repetition runs the pipeline three times in fresh processes: cold (empty output root), warm (the same
root again: no new data, everything up to the Trainer cached; the Evaluator runs again against the model the
cold run blessed, the new baseline) and cached (the same root a third time: every component cached). Import
time is included; it is part of what every run costs, and measured on its own as well. TFX's penguin
example (bench/tfx_penguin_example.py) runs `--example-repeats` times in the same session. Writes its
section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.results import environment, spread, write_section
from bench.tfx_penguin_example import timed_example_run

# The CLI's progress line per component: "  Transform                  12.3 s".
_PROGRESS = re.compile(r"^  (\S+)\s+(\d+\.\d) s$", re.M)
IMPORTS = "import pipeline.local_runner, pipeline.results, components.serving_check"
TITLE = "End-to-end local run (`python -m bench.local_run`)"


def timed_run(output_root: str) -> tuple[float, dict[str, float]]:
    """(wall seconds, seconds per component) of `python -m pipeline run` on `output_root`."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "run", "--output-root", output_root],
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    return wall, {node: float(seconds) for node, seconds in _PROGRESS.findall(result.stdout)}


def timed_imports() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", IMPORTS], check=True)
    return time.perf_counter() - start


def timed_tfx_packaging() -> tuple[float, float]:
    """(seconds, MiB) of TFX packaging itself for remote Beam workers, as each of its Beam executors does
    when given any Beam arguments (a local run passes none; its scratch directory would remove them)."""
    from tfx.utils import dependency_utils

    from pipeline.local_runner import scratch_temp_dir

    with scratch_temp_dir() as scratch:
        start = time.perf_counter()
        dependency_utils.build_ephemeral_package()
        seconds = time.perf_counter() - start
        size = sum(f.stat().st_size for f in Path(scratch).rglob("*") if f.is_file())
    return seconds, size / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--example-repeats", type=int, default=1, help="runs of TFX's penguin example")
    args = parser.parse_args()

    cold, warm, cached, imports, packaging = [], [], [], [], []
    per_component = {"cold": {}, "warm": {}, "cached": {}}
    for i in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="bench-local-") as root:
            for name, walls in (("cold", cold), ("warm", warm), ("cached", cached)):
                wall, components = timed_run(root)
                walls.append(wall)
                for node, seconds in components.items():
                    per_component[name].setdefault(node, []).append(seconds)
        imports.append(timed_imports())
        packaging.append(timed_tfx_packaging())
        print(
            f"repeat {i + 1}: cold {cold[-1]:.1f} s, warm {warm[-1]:.1f} s, cached {cached[-1]:.1f} s, "
            f"imports {imports[-1]:.1f} s"
        )
    example = [timed_example_run() for _ in range(args.example_repeats)]
    print(f"TFX penguin example: {', '.join(f'{s:.1f} s' for s in example)}")

    rows = "\n".join(
        f"| {node} | {statistics.median(seconds):.1f} | "
        f"{statistics.median(per_component['warm'].get(node, [0.0])):.1f} | "
        f"{statistics.median(per_component['cached'].get(node, [0.0])):.1f} |"
        for node, seconds in per_component["cold"].items()
    )
    ratio = statistics.median(cold) / statistics.median(example)
    write_section(
        TITLE,
        f"{environment()}"
        "- Default task (penguin_species: 344 rows, WideAndDeep, 300 training steps), Beam in_memory; "
        "whole-process wall time in seconds, median (min-max, n)\n\n"
        "| run | wall time (s) |\n|---|---|\n"
        f"| cold (empty output root) | {spread(cold)} |\n"
        f"| warm (no new data: cached up to the Trainer, the Evaluator against the new baseline) | "
        f"{spread(warm)} |\n"
        f"| cached (a third time: every component cached) | {spread(cached)} |\n"
        f'| imports alone (`python -c "{IMPORTS}"`) | {spread(imports)} |\n'
        f"| TFX's penguin example (tuning off, BulkInferrer on, 100 steps, multi_processing) | "
        f"{spread(example)} |\n\n"
        f"Cold run / TFX's penguin example: {ratio:.2f}x.\n\n"
        "Not in these runs: TFX's Beam executors, when given any Beam arguments, first package TFX itself "
        "for remote workers (`dependency_utils.build_ephemeral_package`, into a temporary directory they "
        f"never remove): {spread([s for s, _ in packaging])} s and "
        f"{statistics.median(mib for _, mib in packaging):.0f} MiB each time. A local run passes Beam no "
        "arguments (its defaults are `in_memory`), so none of its four Beam components does.\n\n"
        "Seconds per component (median; the CLI's progress lines: from the component's start to its end, "
        "as the orchestrator logs them):\n\n"
        "| component | cold | warm | cached |\n|---|---|---|---|\n"
        f"{rows}\n",
    )


if __name__ == "__main__":
    main()
