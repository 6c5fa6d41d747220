"""The Evaluator's metrics from TFMA's batches (components/batched_metrics.py) against TFX's own executor on
the same model, baseline and data (tests/evaluator_comparison.py): the same metric values (AUC with TFMA's
10,000 thresholds and every other metric, within 1e-6 relative), the same slices, the same validation and
blessing, for classification (blessed without a baseline, refused by its absolute and change thresholds
against a baseline), regression, the two-headed model and the siamese task. The binary classification's AUC
is compared on the taxi table's run (tests/test_users_data.py). The runs are the suite's own."""

from __future__ import annotations

import pytest

from components.evaluator import METRICS_FROM
from tests.evaluator_comparison import compare, run_tfx_evaluator

pytestmark = pytest.mark.e2e

RUNS = [
    "first_run",  # classification, per-island slices, no baseline: blessed
    "crippled_run",  # a 1-step candidate against the blessed baseline: refused
    "body_mass_run",  # regression
    "crippled_body_mass_run",  # regression, refused by its change thresholds against the baseline
    "multi_run",  # the two-headed model: an accuracy and an RMSE gate
    "similarity_run",  # the siamese task's pair accuracy
]


@pytest.mark.parametrize("run_fixture", RUNS)
def test_the_same_metrics_slices_and_blessing_as_tfxs_evaluator(run_fixture, request, tmp_path):
    record = request.getfixturevalue(run_fixture)
    both = run_tfx_evaluator(record.config.metadata_store, record.summary.run_id, str(tmp_path))
    # The run's metrics came from TFMA's batches, not from TFMA's example-by-example path.
    assert both["ours"]["evaluation"].get_string_custom_property(METRICS_FROM) == "batches"
    metrics = compare(both)
    assert len(metrics) >= 1 and all(metrics.values())
