"""The data stage at scale: wall time, rows/second and peak memory of the pipeline's components up to
Transform (ExampleGen, StatisticsGen, the schema import, ExampleValidator, the data and drift gates and
Transform), on generated rows of the default penguins schema.

    .venv/bin/python -m bench.data_stage --rows 10000 100000 1000000 --workers 1 2

Each measurement runs in a fresh process on a fresh output root; this process samples the resident memory
of that process and of every process it starts (Beam's multi_processing workers) ten times a second. The
stage time is measured inside the run, after imports; rows/second divides the rows by it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.results import component_table, environment, spread, write_section

TITLE = "Data stage scaling (`python -m bench.data_stage`)"
SAMPLE_EVERY_S = 0.1
OUTPUTS = "outputs"  # the output root under a measurement's directory


def run_stage(output_root: str, data_root: str, workers: int) -> dict:
    """Runs the data stage once in this process; returns its wall time after imports."""
    from tfx.orchestration import metadata
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner

    from pipeline.config import local_beam_args
    from pipeline.local_runner import scratch_temp_dir
    from pipeline.pipeline import create_pipeline
    from pipeline.run_summary import latest_run
    from pipeline.tasks import task_config

    config = task_config(
        "penguin_species",
        output_root=output_root,
        data_root=data_root,
        beam_pipeline_args=local_beam_args(workers),
    )
    Path(output_root).mkdir(parents=True, exist_ok=True)
    connection = metadata.sqlite_metadata_connection_config(config.metadata_path)
    stage = create_pipeline(config, connection, data_only=True)
    with scratch_temp_dir():
        start = time.perf_counter()
        LocalDagRunner().run(stage)
        seconds = time.perf_counter() - start
    summary = latest_run(config.metadata_path, config.pipeline_name)
    return {"stage_s": seconds, "components": summary.seconds}


def tree_sample(process: psutil.Process, cpu: dict[int, float]) -> int:
    """Resident bytes of `process` and all its descendants; records each one's CPU seconds so far (user and
    system, its own) in `cpu` by PID. Processes that vanish mid-count are skipped."""
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            with p.oneshot():
                total += p.memory_info().rss
                times = p.cpu_times()
                cpu[p.pid] = times.user + times.system
        except psutil.Error:
            pass
    return total


@dataclasses.dataclass(frozen=True)
class Sampled:
    """A sampled child-process run: exit status, wall seconds, peak resident bytes of the process tree and
    CPU seconds of the whole tree (each process as last sampled: at most SAMPLE_EVERY_S of each is
    missed)."""

    status: int
    wall_s: float
    peak_bytes: int
    cpu_s: float


def sampled_run(command: list[str], stdout, stderr) -> Sampled:
    """Runs `command`, sampling the resident memory and CPU time of it and its descendants every
    SAMPLE_EVERY_S."""
    peak, cpu = 0, {}
    start = time.perf_counter()
    child = psutil.Popen(command, stdout=stdout, stderr=stderr)
    while child.poll() is None:
        peak = max(peak, tree_sample(child, cpu))
        time.sleep(SAMPLE_EVERY_S)
    return Sampled(child.returncode, time.perf_counter() - start, peak, sum(cpu.values()))


def measure(rows: int, workers: int, seed: int = 0, root: str | None = None) -> dict:
    """Generates `rows` rows, runs the data stage on them in a child process; wall, stage time, peak RSS.
    Everything is written under `root` (default: a temporary directory, removed after)."""
    from pipeline.data import write_generated_penguins

    with contextlib.nullcontext(root) if root else tempfile.TemporaryDirectory(prefix="bench-data-") as root:
        data_root = os.path.join(root, "data")
        write_generated_penguins(os.path.join(data_root, "penguins.csv"), rows, seed)
        result_file = os.path.join(root, "result.json")
        command = [sys.executable, "-m", "bench.data_stage", "--child", root, data_root, str(workers)]
        with open(os.path.join(root, "log"), "w") as log:
            run = sampled_run(command, subprocess.DEVNULL, log)
        if run.status != 0:
            log = Path(root, "log").read_text()[-3000:]
            raise RuntimeError(f"the data stage failed on {rows} rows ({workers} workers):\n{log}")
        result = json.loads(Path(result_file).read_text())
    return {
        "rows": rows,
        "workers": workers,
        "wall_s": run.wall_s,
        "stage_s": result["stage_s"],
        "rows_per_s": rows / result["stage_s"],
        "peak_rss_mib": run.peak_bytes / 2**20,
        "cpu_s": run.cpu_s,
        "components": result["components"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--child", nargs=3, metavar=("ROOT", "DATA_ROOT", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        root, data_root, workers = args.child
        result = run_stage(os.path.join(root, OUTPUTS), data_root, int(workers))
        Path(root, "result.json").write_text(json.dumps(result))
        return

    results = []
    for rows in args.rows:
        for workers in args.workers:
            runs = [measure(rows, workers, seed) for seed in range(args.repeats)]
            figures = {
                key: [run[key] for run in runs] for key in ("wall_s", "stage_s", "peak_rss_mib", "cpu_s")
            }
            components = {
                node: statistics.median(run["components"][node] for run in runs)
                for node in runs[0]["components"]
            }
            results.append({"rows": rows, "workers": workers, **figures, "components": components})
            print(json.dumps(results[-1]), flush=True)
    write_section(TITLE, report(results))


def _mode(workers: int) -> str:
    return "in_memory" if workers == 1 else f"multi_processing, {workers} workers"


def report(results: list[dict]) -> str:
    """The RESULTS.md section: a row per size and mode, then the scaling from the smallest size up."""
    lines = [
        environment(),
        "- The data stage (CsvExampleGen, StatisticsGen, ImportSchemaGen, ExampleValidator, the data and "
        "drift gates, Transform) on generated rows of the penguins schema "
        "(`pipeline.data.generate_penguins`), a fresh output root each; stage = wall time of the run "
        "after imports; peak RSS = largest sum over the process and its Beam workers, sampled every "
        "0.1 s; CPU = user and system seconds of the process and its workers, sampled likewise; cores "
        "busy = CPU / whole process. Medians; ranges where n > 1.\n",
        "| rows | Beam mode | stage (s) | rows/s | whole process (s) | peak RSS (MiB) | CPU (s) "
        "| cores busy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    stage, whole = {}, {}
    for r in results:
        mode = _mode(r["workers"])
        seconds = stage[(r["rows"], mode)] = statistics.median(r["stage_s"])
        wall, cpu = (statistics.median(r[key]) for key in ("wall_s", "cpu_s"))
        whole[(r["rows"], r["workers"])] = (wall, cpu)
        lines.append(
            f"| {r['rows']:,} | {mode} | {spread(r['stage_s'])} | {r['rows'] / seconds:,.0f} "
            f"| {spread(r['wall_s'])} | {spread(r['peak_rss_mib'], 0)} | {spread(r['cpu_s'])} "
            f"| {cpu / wall:.2f} |"
        )
    lines += ["", "Seconds per component (from ML Metadata: registration to outcome), medians:", ""]
    columns = [f"{r['rows']:,} {_mode(r['workers']).split(',')[0]}" for r in results]
    lines += [*component_table(columns, [r["components"] for r in results]), ""]
    sizes = sorted({rows for rows, _ in stage})
    for (rows, mode), seconds in stage.items():
        smaller = [s for s in sizes if s < rows and (s, mode) in stage]
        if smaller:
            base = smaller[-1]
            lines.append(
                f"- {mode}: {rows:,} rows take {seconds / stage[(base, mode)]:.1f}x the time of {base:,} "
                f"({rows / base:.0f}x the rows)"
            )
    lines += ["", *_worker_gains(whole)]
    return "\n".join(lines) + "\n"


def _worker_gains(whole: dict[tuple[int, int], tuple[float, float]]) -> list[str]:
    """Per size measured both ways, what the Beam workers gain over one process (whole process) and why: the
    gain is exactly (one process's CPU seconds / the workers') x (cores the workers keep busy / cores one
    process keeps busy), and on these machines no run can keep more than os.cpu_count() cores busy."""
    lines = []
    cores = os.cpu_count()
    for (rows, workers), (wall, cpu) in sorted(whole.items()):
        if workers == 1 or (rows, 1) not in whole:
            continue
        one_wall, one_cpu = whole[(rows, 1)]
        lines.append(
            f"- {rows:,} rows, {workers} workers: {one_wall / wall:.2f}x one process = CPU seconds "
            f"{one_cpu / cpu:.2f}x (one process's {one_cpu:.0f} s / the workers' {cpu:.0f} s) x cores busy "
            f"{(cpu / wall) / (one_cpu / one_wall):.2f}x ({cpu / wall:.2f} / {one_cpu / one_wall:.2f}); with "
            f"{cores} cores the most any number of workers could gain doing one process's CPU work is "
            f"{cores / (one_cpu / one_wall):.2f}x"
        )
    return lines


if __name__ == "__main__":
    main()
