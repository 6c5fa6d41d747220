"""preprocessing_fn run through a real tf.Transform Beam pipeline on a few rows with known statistics."""

from __future__ import annotations

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


def run_transform(tmp_path_factory, custom_config: dict):
    schema = tfdv.load_schema_text(str(DEFAULT_SCHEMA))
    spec = schema_utils.schema_as_feature_spec(schema).feature_spec
    spec = {k: v for k, v in spec.items() if k in ROWS[0]}
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    output_dir = str(tmp_path_factory.mktemp("tft"))
    with tft_beam.Context(temp_dir=str(tmp_path_factory.mktemp("tft_tmp"))):
        (rows, _), transform_fn = (ROWS, metadata) | tft_beam.AnalyzeAndTransformDataset(
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
