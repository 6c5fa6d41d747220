"""A drafted schema accepts the data it was drafted from, marks the label, and flags what to review."""

from __future__ import annotations

import tensorflow_data_validation as tfdv

from pipeline.config import IDENTIFIER_TAG
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


def test_a_string_column_of_mostly_unique_values_is_drafted_as_an_identifier(tmp_path):
    """Two rows in three carry a name seen only once: an identifier (tagged, no enumerated domain), while a
    numeric column of unique values and a small category stay features; an empty label cell is counted."""
    rows = ["name,id,colour,price"]
    for i in range(300):
        name = f"car {i}" if i % 3 else "ford pinto"  # 200 of 300 names unique, 100 repeated
        price = "" if i % 50 == 0 else str(1000 + i)  # 6 of 300 unlabelled
        rows.append(f"{name},{i},{['red', 'blue'][i % 2]},{price}")
    (tmp_path / "cars.csv").write_text("\n".join(rows) + "\n")
    schema, stats = draft_schema(str(tmp_path), "price")
    by_name = {f.name: f for f in schema.feature}
    assert list(by_name["name"].annotation.tag) == [IDENTIFIER_TAG] and not by_name["name"].domain
    assert not by_name["id"].annotation.tag and not by_name["colour"].annotation.tag
    assert by_name["colour"].domain  # an enumerated category
    notes = review_notes(schema, stats, "price")
    assert notes[0].endswith(
        "empty in 2.0% of rows (6 of 300): those rows are left out of training and evaluation (a run stops "
        "past --max-unlabelled-share)"
    )
    (name,) = [n for n in notes if n.startswith("name:")]
    assert "an identifier" in name and "no model input by default, carried into predict's output" in name
    # A stricter rule (all rows unique) keeps it a feature.
    strict, _ = draft_schema(str(tmp_path), "price", identifier_share=0.9)
    assert not next(f for f in strict.feature if f.name == "name").annotation.tag
