"""A drafted schema accepts the data it was drafted from, marks the label, and flags what to review."""

from __future__ import annotations

import tensorflow_data_validation as tfdv

from pipeline.data import write_penguins_csv
from pipeline.schema_draft import draft_schema, review_notes


def test_draft_accepts_its_own_data_including_empty_cells(tmp_path):
    write_penguins_csv(tmp_path)
    schema, stats = draft_schema(str(tmp_path), "species")

    species = next(f for f in schema.feature if f.name == "species")
    assert list(species.not_in_environment) == ["SERVING"]
    assert species.presence.min_fraction == 1.0
    assert set(schema.default_environment) == {"TRAINING", "SERVING"}
    # Empty CSV cells arrive as empty value lists: optional features must allow zero values.
    sex = next(f for f in schema.feature if f.name == "sex")
    assert sex.presence.min_fraction < 1.0 and not sex.value_count.HasField("min")

    training = tfdv.generate_statistics_from_csv(str(tmp_path / "penguins.csv"))
    assert dict(tfdv.validate_statistics(training, schema, environment="TRAINING").anomaly_info) == {}

    notes = review_notes(schema, stats, "species")
    assert notes[0].startswith("label 'species': task classification")
    assert any(
        n.startswith("island: BYTES, required; only these values are allowed: Biscoe, Dream, Torgersen")
        for n in notes
    )
    # 2 and 11 of the 344 rows have the cell empty.
    assert "bill_length_mm: FLOAT, may be missing (empty in 0.6% of rows); observed 32.1 .. 59.6" in " ".join(
        notes
    )
    assert any(n.startswith("sex: BYTES, may be missing (empty in 3.2% of rows)") for n in notes)
