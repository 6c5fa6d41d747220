"""A simulated week of continuous retraining, through the command line in fresh processes, fixed seeds:

span 1 -> trained and pushed (version 1); span 2, same population -> trained from version 1's weights,
compared with it (0.03 accuracy tolerance) and pushed (version 2); span 3, drifted -> stopped by the drift
gate, version 2 still served; no new span -> no run; rollback to version 1, then back to version 2.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from tests.datasets import write_penguin_span
from tests.test_cli_e2e import REPO_ROOT, cli

pytestmark = pytest.mark.e2e

SCHEMA = str(REPO_ROOT / "schemas" / "penguins" / "schema.pbtxt")


class Week:
    def __init__(self, root: Path):
        self.data = root / "week"
        self.output = root / "out"
        self.results: dict[str, object] = {}

    def retrain(self, *extra):
        return cli(
            "retrain", "--data-root", str(self.data), "--schema", SCHEMA, "--label", "species",
            "--output-root", str(self.output), "--max-accuracy-drop", "0.03", *extra,
        )  # fmt: skip

    def registry(self, *argv):
        return cli(*argv, "--pipeline-name", "week", "--output-root", str(self.output))

    def served(self) -> list[str]:
        return sorted(p.name for p in (self.output / "serving_model").iterdir())

    def runs(self) -> int:
        from pipeline.run_summary import run_summaries

        return len(run_summaries(str(self.output / "metadata.sqlite"), "week"))


@pytest.fixture(scope="module")
def week(tmp_path_factory) -> Week:
    week = Week(tmp_path_factory.mktemp("retraining"))
    r = week.results
    write_penguin_span(week.data, 1, seed=1)
    r["day1"], r["served1"] = week.retrain(), week.served()
    write_penguin_span(week.data, 2, seed=2)
    r["day2"], r["served2"] = week.retrain("--warm-start"), week.served()
    write_penguin_span(week.data, 3, seed=3, drift=True)
    r["day3"], r["served3"] = week.retrain(), week.served()
    runs_before = week.runs()
    r["day4"], r["runs_added_day4"] = week.retrain(), week.runs() - runs_before
    r["models"] = week.registry("models")
    r["rollback"], r["served_after_rollback"] = week.registry("rollback"), week.served()
    version_2 = r["served2"][-1]
    r["forward"], r["served_after_forward"] = week.registry("rollback", version_2), week.served()
    return week


def test_span_1_is_trained_and_pushed_as_the_first_version(week):
    day1 = week.results["day1"]
    assert day1.returncode == 0, day1.stderr[-2000:]
    assert "span 1 is new (last processed: none)" in day1.stdout
    assert "(span 1)" in day1.stdout and "Blessed and pushed" in day1.stdout
    assert len(week.results["served1"]) == 1


def test_span_2_is_compared_with_the_baseline_warm_started_and_pushed(week):
    day2 = week.results["day2"]
    assert day2.returncode == 0, day2.stderr[-2000:]
    assert "span 2 is new (last processed: 1)" in day2.stdout
    assert "baseline" in day2.stdout  # the accuracy line shows the served model's on the same examples
    assert "Blessed and pushed" in day2.stdout
    assert len(week.results["served2"]) == 2

    (record,) = (week.output / "pipeline" / "Trainer" / "model_run").glob("*/warm_start.json")
    warm = json.loads(record.read_text())
    assert "hidden_0" in warm["layers"] and "probabilities" in warm["layers"]


def test_span_3_drifted_and_was_stopped_before_training(week):
    day3 = week.results["day3"]
    assert day3.returncode == 1
    error = day3.stderr.strip().splitlines()[-1]
    assert error.startswith("error: Drift gate: 2 feature(s) drifted from the previous span")
    assert "island: The Linfty distance between current and previous is" in error
    assert "bill_length_mm: The approximate Jensen-Shannon divergence" in error
    assert week.results["served3"] == week.results["served2"]


def report_of(result) -> str:
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("Report")]
    return Path(line.split()[-1]).read_text()


def test_reports_show_drift_against_the_previous_span(week):
    from tests.test_report import Page

    day2 = Page(report_of(week.results["day2"]))
    features = day2.table("feature")
    header = [t for t in day2.tables if t[0][0] == "feature"][0][0]
    assert header[-1] == "drift vs previous span"
    assert re.fullmatch(r"L-inf \d\.\d{3}", features["island"][-1])
    assert re.fullmatch(r"JS \d\.\d{3}", features["bill_length_mm"][-1])
    assert day2.pairs()["data spans"] == "2"

    day3 = Page(report_of(week.results["day3"]))
    assert "Stopped by the drift gate: the data moved from the previous span" in day3.all_text
    drift = {name: float(row[-1].split()[1]) for name, row in day3.table("feature").items()}
    # The same distances the drift gate measured and stopped on.
    error = week.results["day3"].stderr.strip().splitlines()[-1]
    for feature in ("island", "bill_length_mm"):
        gate = re.search(rf"{feature}: The .*? is (\d\.\d+)", error)
        assert drift[feature] == pytest.approx(float(gate.group(1)), abs=5e-4)
    assert drift["island"] > 0.2 and drift["bill_length_mm"] > 0.15  # the schema's thresholds


def test_no_new_span_means_no_run(week):
    day4 = week.results["day4"]
    assert day4.returncode == 0, day4.stderr[-2000:]
    assert "no new span: span 3 is the newest" in day4.stdout
    assert week.results["runs_added_day4"] == 0


def test_models_lists_versions_with_spans_code_and_metrics(week):
    models = week.results["models"]
    assert models.returncode == 0, models.stderr[-2000:]
    version_1, version_2 = week.results["served2"]
    lines = {line.split()[0]: line for line in models.stdout.splitlines() if line.startswith("  ")}
    assert "serving" in lines[version_2] and "span 2" in lines[version_2]
    assert "available" in lines[version_1] and "span 1" in lines[version_1]
    assert (
        "sparse_categorical_accuracy 0.9" in lines[version_1]
        or "sparse_categorical_accuracy 1.0" in lines[version_1]
    )
    assert "code " in lines[version_1] and "code unknown" not in lines[version_1]


def test_rollback_and_forward_again(week):
    version_1, version_2 = week.results["served2"]
    assert week.results["rollback"].returncode == 0
    assert f"Now serving version {version_1} (was {version_2})" in week.results["rollback"].stdout
    assert week.results["served_after_rollback"] == [f".rolled-back-{version_2}", version_1]
    assert week.results["forward"].returncode == 0
    assert week.results["served_after_forward"] == [version_1, version_2]
    assert os.path.exists(week.output / "serving_model" / version_2 / "saved_model.pb")
