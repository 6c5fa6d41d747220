"""What self-hosted Kubeflow Pipelines' launcher copies to each task's disk before the task starts: every
input artifact, object by object (`component/launcher_v2.go`, `downloadArtifacts`; KFP has no way to skip
it), though TFX reads its inputs from the store. One run of the compiled pipeline on generated rows, its
data, pipeline root and serving directory on an S3 server on loopback (moto), executed by the launcher
harness (tests/kfp_launcher.py, mode kfp, backend 2.17.0); per task, the bytes and seconds of the downloads
and the task's wall time. Needs root (each task runs in its own mount namespace, as in its pod).

    .venv/bin/python -m bench.kfp_downloads --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench.results import environment, write_section
from pipeline.config import DEFAULT_RESOURCES

TITLE = "Kubeflow launcher downloads (`python -m bench.kfp_downloads`)"
BUCKET = "bench"


def measure(rows: int) -> dict:
    from pipeline.cli import main as cli
    from pipeline.config import REPO_ROOT
    from pipeline.data import write_generated_penguins
    from pipeline.storage.locations import KFP_S3_SECRET
    from tests.conftest import image_workdir
    from tests.kfp_launcher import EXECUTED, LOCAL_DIRS, Launcher
    from tests.object_store import s3_server, secret_of

    mount_points = [Path(p) for p in (*LOCAL_DIRS.values(), image_workdir()) if not Path(p).exists()]
    for path in mount_points:
        path.mkdir()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-kfp-") as root,
            s3_server(Path(root, "moto.log")) as s3,
        ):
            client = s3.client()
            client.create_bucket(Bucket=BUCKET)
            csv = Path(root, "penguins.csv")
            write_generated_penguins(csv, rows, seed=0)
            client.upload_file(str(csv), BUCKET, "data/penguins.csv")
            argv = ["compile", "--output-root", f"s3://{BUCKET}/root", "--data-root", f"s3://{BUCKET}/data"]
            argv += [
                "--schema",
                "schemas/penguins/schema.pbtxt",
                "--label",
                "species",
                "--s3-endpoint",
                s3.endpoint,
            ]
            argv += ["--compiled-dir", str(Path(root, "compiled")), "--image", "registry.local/p:1"]
            if cli(argv) != 0:
                raise RuntimeError("compile failed")
            (spec,) = Path(root, "compiled").glob("*/pipeline.yaml")
            secrets = {KFP_S3_SECRET: secret_of(s3)}
            launcher = Launcher(spec, "kfp", REPO_ROOT, Path(root, "logs"), secrets=secrets)
            started = time.monotonic()
            run = launcher.run()
            wall = time.monotonic() - started
            tasks = {
                name: {
                    "downloaded_mib": record.downloaded_bytes / 2**20,
                    "disk_mib": record.disk_bytes / 2**20,
                    "download_s": record.download_s,
                    "peak_mib": record.peak_mib,
                }
                for name, record in run.tasks.items()
                if record.state == EXECUTED
            }
            return {"rows": rows, "csv_mib": csv.stat().st_size / 2**20, "wall_s": wall, "tasks": tasks}
    finally:
        for path in mount_points:
            path.rmdir()


def report(result: dict) -> str:
    lines = [
        environment(),
        f"- One run of the compiled pipeline on {result['rows']:,} generated rows "
        f"({result['csv_mib']:.0f} MiB of CSV) on an S3 server on loopback (moto), through the launcher "
        "harness (mode kfp, backend 2.17.0: untyped inputs, executor-logs, the launcher's downloads); the "
        f"whole run {result['wall_s']:.0f} s.\n",
        "| task | downloaded (MiB) | download (s) | on the pod's /s3 at the end (MiB) | peak RSS (MiB) |",
        "|---|---|---|---|---|",
    ]
    for name, task in sorted(result["tasks"].items(), key=lambda item: -item[1]["downloaded_mib"]):
        lines.append(
            f"| {name} | {task['downloaded_mib']:,.1f} | {task['download_s']:.1f} | {task['disk_mib']:,.1f} "
            f"| {task['peak_mib']:,.0f} |"
        )
    total = sum(t["downloaded_mib"] for t in result["tasks"].values())
    seconds = sum(t["download_s"] for t in result["tasks"].values())
    lines.append(f"\n- In all {total:,.0f} MiB copied in {seconds:.1f} s before the tasks started.")
    name, most = max(((n, t["disk_mib"]) for n, t in result["tasks"].items()), key=lambda item: item[1])
    per_million = most / (result["rows"] / 1e6)
    disk = DEFAULT_RESOURCES.disk_gb
    lines.append(
        f"- The most a task's download volume held: {most:.1f} MiB ({name}), {per_million:.0f} MiB per "
        f"million rows of this table: the default {disk:g} GiB per task holds about "
        f"{disk * 1024 / per_million:.0f} "
        "million rows (the served baseline adds its model to the Evaluator's share)."
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--from-json", help="write the section from a measurement printed earlier")
    args = parser.parse_args()
    result = json.loads(Path(args.from_json).read_text()) if args.from_json else measure(args.rows)
    print(json.dumps(result), flush=True)
    write_section(TITLE, report(result))


if __name__ == "__main__":
    main()
