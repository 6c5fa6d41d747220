"""The data gate on ExampleValidator output written to disk, run through its real executor."""

from __future__ import annotations

import os

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import artifact_utils, standard_artifacts

from components.data_gate import (
    ANOMALIES_FILE,
    SCHEMA_FILE,
    DataGate,
    DataValidationError,
    anomaly_summary,
)


def anomalies_proto(**features: str) -> anomalies_pb2.Anomalies:
    anomalies = anomalies_pb2.Anomalies()
    for feature, description in features.items():
        info = anomalies.anomaly_info[feature]
        info.short_description = "short"
        info.description = description
    return anomalies


def write_artifacts(tmp_path, by_split: dict[str, anomalies_pb2.Anomalies]):
    anomalies = standard_artifacts.ExampleAnomalies()
    anomalies.uri = str(tmp_path / "anomalies")
    anomalies.split_names = artifact_utils.encode_split_names(sorted(by_split))
    for split, proto in by_split.items():
        split_dir = artifact_utils.get_split_uri([anomalies], split)
        os.makedirs(split_dir)
        with open(os.path.join(split_dir, ANOMALIES_FILE), "wb") as f:
            f.write(proto.SerializeToString())
    schema = standard_artifacts.Schema()
    schema.uri = str(tmp_path / "schema")
    os.makedirs(schema.uri)
    (tmp_path / "schema" / SCHEMA_FILE).write_text('feature { name: "a" type: FLOAT }\n')
    validated = standard_artifacts.Schema()
    validated.uri = str(tmp_path / "validated")
    return anomalies, schema, validated


def run_gate(anomalies, schema, validated):
    executor = DataGate.EXECUTOR_SPEC.executor_class()
    executor.Do({"anomalies": [anomalies], "schema": [schema]}, {"validated_schema": [validated]}, {})


def test_clean_data_passes_the_schema_on(tmp_path):
    artifacts = write_artifacts(tmp_path, {"train": anomalies_proto(), "eval": anomalies_proto()})
    run_gate(*artifacts)
    assert (tmp_path / "validated" / SCHEMA_FILE).read_text() == (
        tmp_path / "schema" / SCHEMA_FILE
    ).read_text()


def test_anomalies_fail_with_one_line_naming_each_feature(tmp_path):
    artifacts = write_artifacts(
        tmp_path,
        {
            "train": anomalies_proto(
                island="Unexpected values: Atlantis", body_mass_g="Out of range:\n 9000"
            ),
            "eval": anomalies_proto(island="Unexpected values: Atlantis"),
        },
    )
    with pytest.raises(DataValidationError) as raised:
        run_gate(*artifacts)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("Data gate: 2 anomalous feature(s), nothing was trained or pushed.")
    assert "body_mass_g: Out of range: 9000 (in train)" in message
    assert "island: Unexpected values: Atlantis (in eval, train)" in message
    assert message.endswith("or update the curated schema if the change is intended.")
    assert not (tmp_path / "validated" / SCHEMA_FILE).exists()


def test_dataset_level_anomalies_count_too():
    anomalies = anomalies_pb2.Anomalies()
    anomalies.dataset_anomaly_info.description = "Low number of examples"
    assert anomaly_summary({"train": anomalies}) == {"<dataset>": "Low number of examples (in train)"}
