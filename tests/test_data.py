"""Generated penguins data: the requested rows, valid against the curated schema, seeded."""

from __future__ import annotations

import tensorflow_data_validation as tfdv

from pipeline.config import DEFAULT_SCHEMA
from pipeline.data import generate_penguins, write_generated_penguins


def test_generated_rows_fit_the_schema_and_repeat_with_the_seed(tmp_path):
    frame = generate_penguins(5000, seed=3)
    assert len(frame) == 5000
    assert frame.equals(generate_penguins(5000, seed=3))
    assert not frame.equals(generate_penguins(5000, seed=4))
    path = write_generated_penguins(tmp_path / "d" / "penguins.csv", 5000, seed=3)
    statistics = tfdv.generate_statistics_from_csv(str(path))
    schema = tfdv.load_schema_text(str(DEFAULT_SCHEMA))
    anomalies = tfdv.validate_statistics(statistics, schema, environment="TRAINING")
    assert dict(anomalies.anomaly_info) == {}


def test_drift_moves_islands_and_bills():
    usual, drifted = generate_penguins(4000, seed=1), generate_penguins(4000, seed=1, drift=True)
    assert (drifted["island"] == "Biscoe").mean() > 0.8 > (usual["island"] == "Biscoe").mean()
    assert drifted["bill_length_mm"].mean() - usual["bill_length_mm"].mean() > 7
