"""Spans, the retraining schedule, the registry's rollback and the drift comparison, without a run."""

from __future__ import annotations

import pandas as pd
import pytest
import tensorflow_data_validation as tfdv

from components.drift_gate import drifted_features
from pipeline.registry import RegistryError, list_versions, rollback
from pipeline.retraining import parse_interval, run_every
from pipeline.spans import latest_range, list_spans


def test_spans_are_numbered_directories_and_the_window_takes_the_newest(tmp_path):
    for name in ("span-1", "span-2", "span-10", "span-x", "notes"):
        (tmp_path / name).mkdir()
    (tmp_path / "span-11").write_text("a file, not a span")
    assert list_spans(str(tmp_path)) == [1, 2, 10]
    assert latest_range(str(tmp_path)) == (10, 10)
    assert latest_range(str(tmp_path), window=2) == (2, 10)
    assert latest_range(str(tmp_path / "nothing")) is None


@pytest.mark.parametrize(
    "text, seconds", [("90s", 90), ("15m", 900), ("6h", 21600), ("1d", 86400), ("2.5", 2.5)]
)
def test_intervals(text, seconds):
    assert parse_interval(text) == seconds


@pytest.mark.parametrize("text", ["soon", "-5m", "0"])
def test_bad_intervals_say_what_is_expected(text):
    with pytest.raises(ValueError, match="interval"):
        parse_interval(text)


def test_the_schedule_survives_a_failed_check_and_carries_on():
    calls, reports, sleeps = [], [], []

    def check():
        calls.append(len(calls))
        if len(calls) == 2:
            raise RuntimeError("the run ended with status 1")

    failures = run_every(60, check, max_checks=4, report=reports.append, sleep=sleeps.append)
    assert calls == [0, 1, 2, 3] and failures == 1
    assert reports == ["check failed (RuntimeError: the run ended with status 1); carrying on"]
    assert len(sleeps) == 3 and all(55 < s <= 60 for s in sleeps)


def serving_dir(tmp_path, *versions):
    directory = tmp_path / "serving_model"
    for version in versions:
        (directory / str(version)).mkdir(parents=True)
        (directory / str(version) / "saved_model.pb").write_text(str(version))
    return directory


def names(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_rollback_serves_the_previous_version_and_forward_restores(tmp_path):
    directory = serving_dir(tmp_path, 100, 200, 300)
    assert rollback(str(directory)) == (300, 200)
    assert names(directory) == [".rolled-back-300", "100", "200"]
    assert rollback(str(directory), 100) == (200, 100)
    assert names(directory) == [".rolled-back-200", ".rolled-back-300", "100"]
    assert rollback(str(directory), 300) == (100, 300)
    assert names(directory) == [".rolled-back-200", "100", "300"]
    states = {v.version: v.state for v in list_versions(str(directory), str(tmp_path / "none.sqlite"), "p")}
    assert states == {300: "serving", 200: "rolled back", 100: "available"}


def test_rollback_refuses_what_it_cannot_do(tmp_path):
    with pytest.raises(RegistryError, match="no model is served"):
        rollback(str(tmp_path / "serving_model"))
    directory = serving_dir(tmp_path, 100)
    with pytest.raises(RegistryError, match="version 100 is the only one served"):
        rollback(str(directory))
    with pytest.raises(RegistryError, match="no version 7 in .*; known versions: 100"):
        rollback(str(directory), 7)
    assert names(directory) == ["100"]


def statistics(frame):
    return tfdv.generate_statistics_from_dataframe(frame)


def test_drift_is_measured_with_the_schemas_comparators():
    schema = tfdv.load_schema_text("schemas/penguins/schema.pbtxt")
    before = pd.DataFrame({"island": ["Biscoe"] * 50 + ["Dream"] * 30 + ["Torgersen"] * 20})
    same = pd.DataFrame({"island": ["Biscoe"] * 48 + ["Dream"] * 32 + ["Torgersen"] * 20})
    moved = pd.DataFrame({"island": ["Biscoe"] * 90 + ["Dream"] * 5 + ["Torgersen"] * 5})
    assert drifted_features(statistics(same), statistics(before), schema) == {}
    found = drifted_features(statistics(moved), statistics(before), schema)
    assert list(found) == ["island"]
    assert "Linfty distance between current and previous is 0.4 " in found["island"]  # 0.9 - 0.5
    assert "above the threshold 0.2" in found["island"]
