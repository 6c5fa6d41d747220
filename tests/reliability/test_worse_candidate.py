"""A batch of data whose labels were scrambled (valid values, wrong rows): the data gate cannot see it, the
candidate trained on it is worse than the served model, and the Evaluator stops it with the metric and
threshold named; the served model stays."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline.results import evaluation
from pipeline.tasks import task_config
from tests.conftest import RunRecord, run

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def served_then_scrambled(tmp_path_factory) -> tuple[RunRecord, RunRecord]:
    """A fresh output root: a run that serves a model, then a run on the same rows with the species column
    permuted."""
    config = task_config("penguin_species", output_root=str(tmp_path_factory.mktemp("scrambled")))
    served = run(config)
    data = Path(config.data_dir, "penguins.csv")
    table = pd.read_csv(data)
    table["species"] = table["species"].sample(frac=1.0, random_state=0).to_numpy()
    table.to_csv(data, index=False)
    return served, run(config)


def test_a_candidate_trained_on_scrambled_labels_is_stopped(served_then_scrambled):
    served, scrambled = served_then_scrambled
    assert served.summary.blessed is True and len(served.serving_versions) == 1
    summary = scrambled.summary
    assert summary.node_states["CsvExampleGen"] == "COMPLETE"  # new data
    assert summary.node_states["DataGate"] == "COMPLETE"  # every value is still valid
    assert summary.node_states["Trainer"] == "COMPLETE"
    assert summary.blessed is False
    assert summary.pushed_destination is None
    assert scrambled.serving_versions == served.serving_versions
    failures = evaluation(summary.outputs["Evaluator"]["evaluation"]).failures
    assert any(f.startswith("sparse_categorical_accuracy") and "needs" in f for f in failures), failures
    assert (Path(served.config.serving_dir, served.serving_versions[0]) / "saved_model.pb").exists()
