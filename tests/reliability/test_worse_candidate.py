"""A batch of data whose labels were scrambled (valid values, wrong rows): the data gate cannot see it, the
candidate trained on it is worse than the served model, and the Evaluator stops it with the metric and
threshold named; the served model stays."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline.results import evaluation
from tests.conftest import RunRecord, run

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def shuffled_labels_run(custom_loop_run) -> RunRecord:
    """The species column of the e2e chain's data permuted, then a run; the data is put back after."""
    config = custom_loop_run.config
    data = Path(config.data_dir, "penguins.csv")
    original = data.read_bytes()
    table = pd.read_csv(data)
    table["species"] = table["species"].sample(frac=1.0, random_state=0).to_numpy()
    table.to_csv(data, index=False)
    try:
        return run(config)
    finally:
        data.write_bytes(original)


def test_a_candidate_trained_on_scrambled_labels_is_stopped(custom_loop_run, shuffled_labels_run):
    summary = shuffled_labels_run.summary
    assert summary.node_states["CsvExampleGen"] == "COMPLETE"  # new data
    assert summary.node_states["DataGate"] == "COMPLETE"  # every value is still valid
    assert summary.node_states["Trainer"] == "COMPLETE"
    assert summary.blessed is False
    assert summary.pushed_destination is None
    assert shuffled_labels_run.serving_versions == custom_loop_run.serving_versions
    failures = evaluation(summary.outputs["Evaluator"]["evaluation"]).failures
    assert any(f.startswith("sparse_categorical_accuracy") and "needs" in f for f in failures), failures
    served = Path(custom_loop_run.config.serving_dir, custom_loop_run.serving_versions[-1])
    assert (served / "saved_model.pb").exists()
