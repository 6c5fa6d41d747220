"""A shared ML Metadata store on a real MySQL-protocol server (Debian's MariaDB, started here on loopback with
a private data directory), through the command line in fresh processes, as users on several machines would
share one:

an empty store -> `models` says nothing is pushed; two runs at once from two processes, of two pipelines
with their own output roots (span 1 of `store_demo`, trained and pushed; the bundled species task as `beta`)
-> both complete, neither reuses the other's artifacts; the same run again -> cached; span 2 -> `retrain`
finds span 1 processed (read from the store), trains, compares with version 1 and pushes version 2; `models`
lists both with their metrics; `report` writes the run report; `rollback` serves version 1; the same
pipeline name on another output root is refused; an unreachable server and a wrong password are one line
each. The password comes from the environment and appears in no output, log, report or model card.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.datasets import write_penguin_span
from tests.mariadb_server import free_port, mariadb_server
from tests.test_cli_e2e import REPO_ROOT, cli

pytestmark = pytest.mark.slow

PASSWORD = "Tr0ub4dor-metadata-pw"
SCHEMA = str(REPO_ROOT / "schemas" / "penguins" / "schema.pbtxt")
STEPS = "150"


class Shared:
    def __init__(self, root: Path, server):
        self.root = root
        self.server = server
        self.url = server.url("pipelines")
        self.data = root / "store_demo"
        self.output = root / "team-a"
        self.env = {"PIPELINE_METADATA_PASSWORD": PASSWORD}
        self.results: dict[str, subprocess.CompletedProcess] = {}

    def demo(self, command: str, *extra: str, output: Path | None = None) -> list[str]:
        return [
            command, "--data-root", str(self.data), "--schema", SCHEMA, "--label", "species",
            "--output-root", str(output or self.output), "--metadata", self.url, "--train-steps", STEPS,
            "--max-accuracy-drop", "0.05", *extra,
        ]  # fmt: skip

    def registry(self, *argv: str, env: dict | None = None):
        return cli(
            *argv, "--pipeline-name", "store_demo", "--output-root", str(self.output), "--metadata", self.url,
            env=env or self.env,
        )  # fmt: skip

    def summaries(self, pipeline_name: str):
        from pipeline.run_summary import run_summaries
        from pipeline.storage.metadata import MetadataLocation

        password_file = self.root / "password"
        password_file.write_text(PASSWORD + "\n")
        return run_summaries(MetadataLocation.parse(self.url, str(password_file)), pipeline_name)


def start(argv: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, **env},
    )


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    root = tmp_path_factory.mktemp("shared-metadata")
    (root / "server").mkdir()
    with mariadb_server(root / "server", PASSWORD) as server:
        shared = Shared(root, server)
        r = shared.results
        r["empty"] = shared.registry("models")
        write_penguin_span(shared.data, 1, seed=1)
        # Two processes at once on one store: span 1 of store_demo, and the bundled task as `beta`.
        beta = [
            "run", "--task", "penguin_species", "--pipeline-name", "beta", "--output-root",
            str(root / "team-b"), "--metadata", shared.url, "--train-steps", STEPS,
        ]  # fmt: skip
        running = [start(shared.demo("retrain"), shared.env), start(beta, shared.env)]
        for name, process in zip(("day1", "beta"), running, strict=True):
            stdout, stderr = process.communicate(timeout=900)
            r[name] = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        r["again"] = cli(*shared.demo("run"), env=shared.env)
        write_penguin_span(shared.data, 2, seed=2)
        r["day2"] = cli(*shared.demo("retrain"), env=shared.env)
        r["models"] = shared.registry("models")
        r["report"] = shared.registry("report")
        r["rollback"] = shared.registry("rollback")
        r["other_root"] = cli(*shared.demo("run", output=root / "team-c"), env=shared.env)
        r["wrong_password"] = shared.registry("models", env={"PIPELINE_METADATA_PASSWORD": "not-it"})
        unreachable = f"mysql://pipeline@127.0.0.1:{free_port()}/pipelines"
        r["unreachable"] = cli(
            *shared.demo("run"), "--metadata", unreachable, env=shared.env
        )  # the last wins
        shared.run_summaries = {name: shared.summaries(name) for name in ("store_demo", "beta")}
        yield shared


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_an_empty_store_has_no_models(shared):
    assert "No model pushed" in ok(shared.results["empty"])


def test_two_pipelines_run_at_once_on_one_store_each_with_its_own_files(shared):
    day1, beta = ok(shared.results["day1"]), ok(shared.results["beta"])
    assert "span 1 is new (last processed: none)" in day1
    assert "Blessed and pushed" in day1 and "Blessed and pushed" in beta
    assert f"Metadata store:    {shared.url}" in day1
    demo_first, beta_first = shared.run_summaries["store_demo"][0], shared.run_summaries["beta"][0]
    # Same code, same bundled-size data, one store: nothing of one pipeline was reused by the other.
    for summary, root in ((demo_first, shared.output), (beta_first, shared.root / "team-b")):
        assert summary.node_states["CsvExampleGen"] == "COMPLETE"
        assert summary.node_states["Trainer"] == "COMPLETE"
        uris = [uri for outputs in summary.outputs.values() for uri in outputs.values()]
        assert uris and all(uri.startswith(str(root) + "/") for uri in uris), uris


def test_the_same_run_again_is_served_from_the_shared_cache(shared):
    ok(shared.results["again"])
    again = shared.run_summaries["store_demo"][1]
    for node in ("CsvExampleGen", "StatisticsGen", "Transform", "Trainer"):
        assert again.node_states[node] == "CACHED", again.node_states
    assert again.outputs["Trainer"] == shared.run_summaries["store_demo"][0].outputs["Trainer"]


def test_retrain_reads_the_last_span_from_the_store_and_pushes_a_second_version(shared):
    day2 = ok(shared.results["day2"])
    assert "span 2 is new (last processed: 1)" in day2
    assert "Blessed and pushed" in day2
    assert len(shared.run_summaries["store_demo"]) == 3


def test_models_report_and_rollback_read_the_shared_store(shared):
    models = ok(shared.results["models"])
    versions = re.findall(r"^\s+(\d{10})\s+(serving|available)\s.*span (\d)", models, re.MULTILINE)
    assert [(state, span) for _, state, span in versions] == [("serving", "2"), ("available", "1")], models
    assert "sparse_categorical_accuracy" in models
    report_path = re.search(r"^Report:\s+(\S+)", ok(shared.results["report"]), re.MULTILINE).group(1)
    html = Path(report_path).read_text()
    assert shared.url in html  # the lineage names the store, without its password
    rollback = ok(shared.results["rollback"])
    assert f"Now serving version {versions[1][0]} (was {versions[0][0]})" in rollback


def test_a_second_output_root_for_the_same_pipeline_is_refused(shared):
    other = shared.results["other_root"]
    assert other.returncode == 1
    [line] = [line for line in other.stderr.splitlines() if line.startswith("error:")]
    assert f"pipeline 'store_demo' in the metadata store {shared.url} writes its artifacts to" in line
    assert f"{shared.output}/pipeline, not {shared.root / 'team-c'}/pipeline" in line
    assert "pass another --pipeline-name, or that --output-root" in line
    assert not (shared.root / "team-c" / "pipeline").exists()


def test_a_wrong_password_and_an_unreachable_server_are_one_line_each(shared):
    wrong = shared.results["wrong_password"]
    assert wrong.returncode == 1
    assert wrong.stderr.strip().splitlines()[-1] == (
        f"error: the metadata store {shared.url} refused the connection (server reached): wrong user or "
        "password, or 'pipeline' may not use database 'pipelines' (the password comes from "
        "--metadata-password-file or PIPELINE_METADATA_PASSWORD)"
    )
    unreachable = shared.results["unreachable"]
    assert unreachable.returncode == 1
    [line] = [line for line in unreachable.stderr.splitlines() if line.startswith("error:")]
    assert re.fullmatch(
        r"error: cannot reach the metadata store mysql://pipeline@127\.0\.0\.1:\d+/pipelines: Connection "
        r"refused; check the host and port, and that the MySQL server is running",
        line,
    )


def test_the_password_appears_nowhere(shared):
    outputs = [r.stdout + r.stderr for r in shared.results.values()]
    assert not [text for text in outputs if PASSWORD in text]
    written = [
        path
        for root in (shared.output, shared.root / "team-b", shared.root / "team-c")
        if root.exists()
        for path in root.rglob("*")
        if path.is_file() and path.suffix in (".log", ".html", ".md", ".json", ".txt", ".pbtxt")
    ]
    assert any(path.suffix == ".log" for path in written)
    assert not [path for path in written if PASSWORD in path.read_text(errors="replace")]
    # TFX logs the connection config it is given: there, the password is replaced.
    logs = "".join(path.read_text() for path in written if path.suffix == ".log")
    assert 'password: "***"' in logs
