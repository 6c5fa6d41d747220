"""The rows `predict` reads and the columns it writes, without a model: the checks before anything runs and
the naming of prediction columns from a version's prediction spec."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.csv_check import InputDataError
from pipeline.inference.columns import column_names, prediction_columns
from pipeline.inference.rows import check_rows, encode, typed

SPEC = {
    "features": {"island": "bytes", "bill_length_mm": "float", "year": "int"},
    "required": ["island"],
    "labels": [["species", "classification"]],
    "classes": {"species": ["Adelie", "Gentoo"]},
    "pairs": False,
    "image": None,
}


def write(directory, name, text):
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(text)
    return directory


def test_rows_are_checked_counted_and_encoded_with_the_models_types(tmp_path):
    data = write(
        tmp_path / "d", "a.csv", "island,bill_length_mm,year,species\nBiscoe,45.5,2008,Gentoo\nDream,,2009,\n"
    )
    files, columns, count = check_rows(str(data), SPEC)
    assert (columns, count, len(files)) == (["island", "bill_length_mm", "year", "species"], 2, 1)
    from pipeline.inference.rows import blocks

    [batch] = list(blocks(files[0], columns))
    import tensorflow as tf

    examples = [
        tf.train.Example.FromString(e) for e in encode(typed(batch, SPEC["features"]), SPEC["features"])
    ]
    first, second = (e.features.feature for e in examples)
    assert first["island"].bytes_list.value == [b"Biscoe"] and first["year"].int64_list.value == [2008]
    assert first["bill_length_mm"].float_list.value == pytest.approx([45.5])
    assert "species" not in first  # a label column in the data is not part of the request
    assert list(second["bill_length_mm"].float_list.value) == []  # an empty cell: no value


@pytest.mark.parametrize(
    "files, message",
    [
        (
            {"a.csv": "island,year\nBiscoe,2008\n", "b.csv": "year,island\n2008,Biscoe\n"},
            r"b\.csv: its header differs from .*a\.csv's \(island, year\); give every file the same columns",
        ),
        (
            {"a.csv": "island,year\nBiscoe,2008\n,2009\n"},
            r"a\.csv line 3: no value in the required column island; fill it in, or remove the row$",
        ),
        (
            {"a.csv": "island,year\nBiscoe,2008.5\n"},
            r"a\.csv line 2: column year holds '2008\.5', not an integer",
        ),
        (
            {"a.csv": "island,year\nBiscoe,2008,extra\n"},
            r"a\.csv: a row after line 1 cannot be read \(.*\); fix the row",
        ),
        ({"a.csv": ""}, r"a\.csv is empty; remove it, or give it a header row and data rows$"),
        ({"a.csv": "island,year\nBiscoe,2008\n".replace("Biscoe", "Bis\udce9coe")}, r"not UTF-8"),
    ],
)
def test_a_file_the_model_cannot_score_is_one_line(files, message, tmp_path):
    for name, text in files.items():
        (tmp_path / name).write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(InputDataError, match=message) as raised:
        check_rows(str(tmp_path), SPEC)
    assert "\n" not in str(raised.value)


def test_prediction_columns_are_named_per_head():
    assert column_names(SPEC) == [
        "predicted_species",
        "species_probability_Adelie",
        "species_probability_Gentoo",
    ]
    two_heads = {
        **SPEC,
        "labels": [["species", "classification"], ["body_mass_g", "regression"]],
    }
    assert column_names(two_heads) == [
        "predicted_species",
        "species_probability_Adelie",
        "species_probability_Gentoo",
        "predicted_body_mass_g",
    ]
    assert column_names({**SPEC, "pairs": True}) == ["distance", "same"]
    columns = prediction_columns(
        two_heads,
        {
            "species_classes": np.array([b"Gentoo"]),
            "species_probabilities": np.array([[0.25, 0.75]], np.float32),
            "species_class_ids": np.array([1]),
            "body_mass_g_predictions": np.array([[5100.5]], np.float32),
        },
    )
    assert {name: values.to_pylist() for name, values in columns.items()} == {
        "predicted_species": ["Gentoo"],
        "species_probability_Adelie": [0.25],
        "species_probability_Gentoo": [0.75],
        "predicted_body_mass_g": [5100.5],
    }
