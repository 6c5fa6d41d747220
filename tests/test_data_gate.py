"""The data gate on ExampleValidator output written to disk, run through its real executor."""

from __future__ import annotations

import os

import pytest
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import artifact_utils, standard_artifacts

from components import csv_example_gen
from components.data_gate import (
    ANOMALIES_FILE,
    NOTE,
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


def run_gate(anomalies, schema, validated, counted=None, max_share=0.05):
    """The gate's executor; `counted`: (rows left out, rows read) as the statistics carry them from
    ExampleGen (label "price"), None as an image ExampleGen leaves them (no count)."""
    statistics = standard_artifacts.ExampleStatistics()
    if counted is not None:
        csv_example_gen.record_counts(statistics, *counted, ["price"])
    executor = DataGate.EXECUTOR_SPEC.executor_class()
    executor.Do(
        {"anomalies": [anomalies], "schema": [schema], "statistics": [statistics]},
        {"validated_schema": [validated]},
        {"max_unlabelled_share": max_share},
    )


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


def test_an_empty_cell_in_a_required_column_is_an_anomaly_and_a_draft_makes_it_optional(tmp_path):
    """ExampleGen writes an empty cell as an empty value list, which TFDV counts as present: the gate must
    still catch it in a column the schema requires, and a schema drafted from such data must allow it."""
    import tensorflow as tf
    import tensorflow_data_validation as tfdv

    from components.csv_example_gen import _split_columns, serialized_examples
    from pipeline.config import DEFAULT_SCHEMA
    from pipeline.schema_draft import draft_schema

    header = "species,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year"
    rows = ["Adelie,Torgersen,39.1,18.7,181.0,3750.0,male,2007", "Adelie,,39.5,17.4,186.0,3800.0,female,2007"]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows.csv").write_text("\n".join([header, *rows]) + "\n")
    paths, types = _split_columns({"input_base": str(tmp_path / "data")}, "*")
    with tf.io.TFRecordWriter(str(tmp_path / "examples.tfrecord")) as writer:
        for example in serialized_examples(paths[0], types):
            writer.write(example)
    statistics = tfdv.generate_statistics_from_tfrecord(str(tmp_path / "examples.tfrecord"))
    anomalies = tfdv.validate_statistics(statistics, tfdv.load_schema_text(str(DEFAULT_SCHEMA)))
    summary = anomaly_summary({"train": anomalies})
    assert list(summary) == ["island"] and "fewer values than expected" in summary["island"]

    drafted, _ = draft_schema(str(tmp_path / "data"), "species")
    island = next(f for f in drafted.feature if f.name == "island")
    assert island.presence.min_fraction < 1.0 and not island.value_count.HasField("min")
    assert dict(tfdv.validate_statistics(statistics, drafted).anomaly_info) == {}


@pytest.mark.parametrize(
    ("counted", "max_share", "note"),
    [
        (None, 0.05, None),  # not counted: image data
        ((0, 406), 0.05, None),
        ((8, 406), 0.05, "8 of 406 rows have no price: not used for training or evaluation"),
        (
            (20, 400),
            0.05,
            "20 of 400 rows have no price: not used for training or evaluation",
        ),  # at the share
        ((8, 406), 0.0, "refused"),
        ((21, 400), 0.05, "refused"),
    ],
)
def test_rows_without_a_label_are_named_and_past_the_share_stop_the_run(tmp_path, counted, max_share, note):
    artifacts = write_artifacts(tmp_path, {"train": anomalies_proto(), "eval": anomalies_proto()})
    if note == "refused":
        with pytest.raises(DataValidationError) as refused:
            run_gate(*artifacts, counted=counted, max_share=max_share)
        (line,) = str(refused.value).splitlines()
        unlabelled, rows = counted
        assert line.startswith(f"Data gate: {unlabelled} of {rows} rows have no price: not used for training")
        assert f"({unlabelled / rows:.1%} of the rows, over the {max_share:.0%} allowed)" in line
        assert "--max-unlabelled-share" in line
        assert not (tmp_path / "validated").exists()  # nothing passed on
        return
    run_gate(*artifacts, counted=counted, max_share=max_share)
    validated = artifacts[2]
    assert (tmp_path / "validated" / SCHEMA_FILE).exists()
    assert (validated.get_string_custom_property(NOTE) or None) == note


def test_dates_that_do_not_parse_stop_the_data_gate_and_the_inference_gate(tmp_path):
    """ExampleGen reads every value of the date columns as Transform's graph does; the statistics carry what
    it found; both gates refuse a value that is not a date in one line naming the column, the format, the
    count and the values. Dates that parse, leap days included, and empty cells pass."""
    from components.batch_inference import InferenceGate
    from tests.test_csv_example_gen import run_executor

    days = ["2024-02-29", "2023-02-28", "", "2000-02-29", "2023-02-29", "1900-02-29", "2023-1-5", "soon"] * 5
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text(
        "day,price\n" + "".join(f"{d},{i}\n" for i, d in enumerate(days))
    )
    examples = standard_artifacts.Examples()
    run_executor(
        csv_example_gen.Executor(),
        tmp_path / "data",
        tmp_path / "ex",
        ("price",),
        examples,
        {"day": "%Y-%m-%d"},
    )
    found = csv_example_gen.recorded_invalid_dates(examples)
    assert found == {
        "day": {"format": "%Y-%m-%d", "count": 15, "examples": ["1900-02-29", "2023-02-29", "soon"]}
    }
    statistics = standard_artifacts.ExampleStatistics()
    csv_example_gen.carry_counts(examples, statistics)
    artifacts = write_artifacts(tmp_path, {"train": anomalies_proto(), "eval": anomalies_proto()})
    with pytest.raises(DataValidationError) as refused:
        DataGate.EXECUTOR_SPEC.executor_class().Do(
            {"anomalies": [artifacts[0]], "schema": [artifacts[1]], "statistics": [statistics]},
            {"validated_schema": [artifacts[2]]},
            {"max_unlabelled_share": 0.05},
        )
    (line,) = str(refused.value).splitlines()
    assert line.startswith(
        "Data gate: day: 15 value(s) are not dates or times of the format %Y-%m-%d "
        "(e.g. '1900-02-29', '2023-02-29', 'soon'); nothing was trained or pushed."
    )
    assert "time_domain.string_format" in line and not (tmp_path / "validated").exists()
    # The inference data's ExampleGen has no labels: every row kept, the dates still checked.
    (tmp_path / "serving").mkdir()
    (tmp_path / "serving" / "statistics" / "Split-inference").mkdir(parents=True)
    inference = standard_artifacts.Examples()
    run_executor(
        csv_example_gen.Executor(), tmp_path / "data", tmp_path / "inf", (), inference, {"day": "%Y-%m-%d"}
    )
    assert csv_example_gen.recorded_invalid_dates(inference)["day"]["count"] == 15
    served = standard_artifacts.ExampleStatistics()
    served.uri = str(tmp_path / "serving" / "statistics")  # no split statistics: no TFDV anomaly to find
    csv_example_gen.carry_counts(inference, served)
    serving_schema = standard_artifacts.Schema()
    serving_schema.uri = str(tmp_path / "serving" / "schema")
    with pytest.raises(
        DataValidationError, match=r"^Inference data gate: day: 15 value\(s\) .* nothing was scored"
    ):
        InferenceGate.EXECUTOR_SPEC.executor_class().Do(
            {"statistics": [served], "schema": [artifacts[1]]}, {"serving_schema": [serving_schema]}, {}
        )
    # Only dates that parse (and empty cells): both gates pass.
    (tmp_path / "data" / "a.csv").write_text("day,price\n2024-02-29,1\n,2\n2023-1-5,3\n")
    clean = standard_artifacts.Examples()
    run_executor(
        csv_example_gen.Executor(), tmp_path / "data", tmp_path / "ok", ("price",), clean, {"day": "%Y-%m-%d"}
    )
    assert csv_example_gen.recorded_invalid_dates(clean)["day"]["count"] == 0
    csv_example_gen.carry_counts(clean, passed := standard_artifacts.ExampleStatistics())
    run_gate(*artifacts)
    from components.data_gate import check_dates

    check_dates(passed)
