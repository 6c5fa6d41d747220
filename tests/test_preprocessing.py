"""preprocessing_fn run through a real tf.Transform Beam pipeline on a few rows with known statistics."""

from __future__ import annotations

import calendar
import datetime
import math

import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from pipeline.config import DEFAULT_SCHEMA
from trainer_module.features import LABEL_VOCABULARY, vocabulary_name
from trainer_module.preprocessing import preprocessing_fn

ROWS = [
    # bill_length_mm 30, 40, 50 and one missing: mean 40, population std sqrt(200/3).
    {"species": ["Adelie"], "island": ["Biscoe"], "bill_length_mm": [30.0], "sex": ["male"], "year": [2007]},
    {"species": ["Adelie"], "island": ["Biscoe"], "bill_length_mm": [40.0], "sex": [], "year": [2008]},
    {"species": ["Gentoo"], "island": ["Dream"], "bill_length_mm": [50.0], "sex": ["female"], "year": [2009]},
    {"species": ["Adelie"], "island": ["Biscoe"], "bill_length_mm": [], "sex": ["male"], "year": [2008]},
]


def run_transform(tmp_path_factory, custom_config: dict, rows=ROWS, spec=None):
    """`rows` through preprocessing_fn (Analyze and Transform); `spec`: their features (default: the
    penguins schema's)."""
    if spec is None:
        schema = tfdv.load_schema_text(str(DEFAULT_SCHEMA))
        spec = schema_utils.schema_as_feature_spec(schema).feature_spec
        spec = {k: v for k, v in spec.items() if k in rows[0]}
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    output_dir = str(tmp_path_factory.mktemp("tft"))
    with tft_beam.Context(temp_dir=str(tmp_path_factory.mktemp("tft_tmp"))):
        (rows, _), transform_fn = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: preprocessing_fn(inputs, custom_config)
        )
        _ = transform_fn | tft_beam.WriteTransformFn(output_dir)
    return rows, tft.TFTransformOutput(output_dir)


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    return run_transform(tmp_path_factory, {"label_key": "species"})


@pytest.fixture(scope="module")
def two_labels(tmp_path_factory):
    """A classification label that is not the first column and a regression label."""
    return run_transform(tmp_path_factory, {"labels": [["island", "classification"], ["year", "regression"]]})


def column(rows, name):
    return [float(row[name][0]) if hasattr(row[name], "__len__") else float(row[name]) for row in rows]


def test_numeric_feature_is_z_scored_and_missing_becomes_the_mean(transformed):
    rows, _ = transformed
    z = math.sqrt(1.5)  # (50 - 40) / sqrt(200 / 3)
    assert column(rows, "bill_length_mm_xf") == pytest.approx([-z, 0.0, z, 0.0], abs=1e-5)


def test_integer_feature_is_z_scored_too(transformed):
    rows, _ = transformed
    # year 2007, 2008, 2009, 2008: mean 2008, std sqrt(0.5)
    assert column(rows, "year_xf") == pytest.approx([-math.sqrt(2), 0, math.sqrt(2), 0], abs=1e-4)


def test_string_features_become_vocabulary_indices(transformed):
    rows, output = transformed
    vocabulary = [v.decode() for v in output.vocabulary_by_name(vocabulary_name("island"))]
    assert vocabulary == ["Biscoe", "Dream"]  # by frequency
    assert column(rows, "island_xf") == [0, 0, 1, 0]
    sex = [v.decode() for v in output.vocabulary_by_name(vocabulary_name("sex"))] + ["<missing or new>"]
    # tf.Transform leaves the empty string out of vocabularies: a missing value lands in the OOV bucket.
    assert [sex[int(i)] for i in column(rows, "sex_xf")] == ["male", "<missing or new>", "female", "male"]


def test_label_maps_to_the_label_vocabulary(transformed):
    rows, output = transformed
    classes = [v.decode() for v in output.vocabulary_by_name(LABEL_VOCABULARY)]
    assert classes == ["Adelie", "Gentoo"]
    assert [classes[int(i)] for i in column(rows, "species_xf")] == ["Adelie", "Adelie", "Gentoo", "Adelie"]


def test_transformed_features_have_fixed_shapes(transformed):
    _, output = transformed
    spec = output.transformed_feature_spec()
    assert spec["bill_length_mm_xf"] == tf.io.FixedLenFeature([1], tf.float32)
    assert spec["island_xf"] == tf.io.FixedLenFeature([1], tf.int64)
    assert spec["species_xf"] == tf.io.FixedLenFeature([1], tf.int64)


def test_every_label_is_transformed_by_its_task(two_labels):
    rows, output = two_labels
    classes = [v.decode() for v in output.vocabulary_by_name(LABEL_VOCABULARY)]
    assert classes == ["Biscoe", "Dream"]  # the first label has the `label` vocabulary
    assert column(rows, "island_xf") == [0, 0, 1, 0]
    assert column(rows, "year_xf") == [2007, 2008, 2009, 2008]  # a regression label keeps its units
    species = [v.decode() for v in output.vocabulary_by_name(vocabulary_name("species"))]
    assert species == ["Adelie", "Gentoo"]  # no longer a label: an ordinary categorical feature


def test_identifiers_are_no_model_input_and_vocabularies_are_capped(tmp_path_factory):
    rows, output = run_transform(
        tmp_path_factory, {"label_key": "species", "identifiers": ["sex"], "max_vocabulary": 1}
    )
    assert "sex_xf" not in rows[0] and "sex_xf" not in output.transformed_feature_spec()
    # Only the most frequent island is kept; the other shares the out-of-vocabulary bucket.
    assert [v.decode() for v in output.vocabulary_by_name(vocabulary_name("island"))] == ["Biscoe"]
    assert column(rows, "island_xf") == [0, 0, 1, 0]
    # Never the label's vocabulary.
    assert len(output.vocabulary_by_name(LABEL_VOCABULARY)) == 2


# Dates: a leap day, the last day of a year, a day before the epoch, a timestamp with a UTC `Z`, one missing.
DATE_ROWS = [
    {"species": ["Adelie"], "day": ["2020-02-29"], "seen": ["2020-02-29T06:30:00Z"]},
    {"species": ["Adelie"], "day": ["2021-12-31"], "seen": ["2021-12-31T23:59:59"]},
    {"species": ["Gentoo"], "day": ["1969-03-01"], "seen": []},
    {"species": ["Adelie"], "day": [], "seen": ["1900-03-01T00:00:00"]},
]
DATE_FORMATS = {"day": "%Y-%m-%d", "seen": "%Y-%m-%dT%H:%M:%S"}


@pytest.fixture(scope="module")
def dates(tmp_path_factory):
    spec = {
        "species": tf.io.FixedLenFeature([], tf.string),
        "day": tf.io.VarLenFeature(tf.string),
        "seen": tf.io.VarLenFeature(tf.string),
    }
    rows = [{**row, "species": row["species"][0]} for row in DATE_ROWS]
    return run_transform(tmp_path_factory, {"label_key": "species", "dates": DATE_FORMATS}, rows, spec)


def expected_calendar(value: str | None, fmt: str) -> dict[str, float]:
    """The cyclic features of one value, from Python's own calendar."""
    if value is None:
        return {}
    moment = datetime.datetime.strptime(value.removesuffix("Z"), fmt)
    year_days = 366 if calendar.isleap(moment.year) else 365
    turns = {
        "month": (moment.month - 1) / 12,
        "day_of_year": (moment.timetuple().tm_yday - 1) / year_days,
        "weekday": moment.weekday() / 7,
    }
    if "%H" in fmt:
        turns["hour"] = (moment.hour * 60 + moment.minute) / (24 * 60)
    return {
        f"{name}_{part}": fn(2 * math.pi * turn)
        for name, turn in turns.items()
        for part, fn in (("sin", math.sin), ("cos", math.cos))
    }


def test_dates_become_the_year_and_cyclic_calendar_features(dates):
    rows, output = dates
    for name, fmt in DATE_FORMATS.items():
        for row, raw in zip(rows, DATE_ROWS, strict=True):
            value = raw[name][0] if raw[name] else None
            expected = expected_calendar(value, fmt)
            for feature in ("month", "day_of_year", "weekday", *(("hour",) if "%H" in fmt else ())):
                for part in ("sin", "cos"):
                    key = f"{feature}_{part}"
                    got = float(row[f"{name}_{key}_xf"][0])
                    # A missing date has no season: 0, 0.
                    assert got == pytest.approx(expected.get(key, 0.0), abs=1e-5), (name, value, key)
    # The year z-scored over the dates present; a missing one is the mean (0).
    days = [2020, 2021, 1969]
    mean, std = sum(days) / 3, math.sqrt(sum((y - sum(days) / 3) ** 2 for y in days) / 3)
    assert column(rows, "day_year_xf") == pytest.approx([(y - mean) / std for y in days] + [0.0], abs=1e-4)
    spec = output.transformed_feature_spec()
    assert "day_xf" not in spec and "day_hour_sin_xf" not in spec and "seen_hour_cos_xf" in spec
    assert all(
        spec[k] == tf.io.FixedLenFeature([1], tf.float32) for k in spec if k.startswith(("day_", "seen_"))
    )


def test_a_value_that_is_not_a_date_fails_in_the_transform_graph(dates):
    _, output = dates
    layer = output.transform_features_layer()
    good = {
        "day": tf.sparse.from_dense([["2024-02-29"]]),
        "seen": tf.sparse.from_dense([["2024-01-01T00:00:00"]]),
    }
    assert float(layer(good)["day_year_xf"][0][0]) > 0
    for bad in ("2023-02-29", "1900-02-29", "2024-13-01", "29/02/2024"):
        with pytest.raises(tf.errors.InvalidArgumentError, match="not a date or time of the format %Y-%m-%d"):
            layer({**good, "day": tf.sparse.from_dense([[bad]])})
