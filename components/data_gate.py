"""The data gate: stops the pipeline when ExampleValidator found anomalies, when a date column holds values
that are not dates of its format, or when too many rows had no label.

ExampleValidator records anomalies but never fails, and its `blessed` property is a per-split JSON value
that `tfx.dsl.Cond` cannot test. The gate reads the anomalies itself and raises `DataValidationError` with
one line naming each anomalous feature and why. ExampleGen leaves out rows whose label is empty and counts
them, and checks every value of the schema's date columns (components/csv_example_gen.py; the statistics
carry both). A value that is not a date of its column's format stops the run (`check_dates`); past
`max_unlabelled_share` of the rows read without a label the gate stops the run with one line, below it the
count goes on with its output (`unlabelled_note`). Its output is the schema the
rest of the pipeline uses, so Transform, Trainer and everything after them cannot run on data the gate
refused.
"""

import os

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types.standard_artifacts import ExampleAnomalies, ExampleStatistics, Schema
from tfx.utils import io_utils

from components.csv_example_gen import (
    invalid_dates_note,
    recorded_counts,
    recorded_invalid_dates,
    unlabelled_note,
)

ANOMALIES_FILE = "SchemaDiff.pb"
SCHEMA_FILE = "schema.pbtxt"


class DataValidationError(RuntimeError):
    """The data does not match the curated schema."""


def split_files(uri: str, file_name: str) -> dict[str, str]:
    """Split name -> path of `file_name` in each `<uri>/Split-<name>/` of a per-split artifact."""
    return {
        os.path.basename(os.path.dirname(path))[len("Split-") :]: path
        for path in sorted(fileio.glob(os.path.join(uri, "Split-*", file_name)))
    }


def pass_schema_on(schema: Schema, output: Schema) -> None:
    """A gate's output: the schema it let through, copied into its output artifact."""
    # fileio rather than shutil: on a cluster the artifacts live in a bucket.
    fileio.makedirs(output.uri)
    fileio.copy(os.path.join(schema.uri, SCHEMA_FILE), os.path.join(output.uri, SCHEMA_FILE), overwrite=True)


def load_anomalies_at(uri: str) -> dict[str, anomalies_pb2.Anomalies]:
    """Split name -> the Anomalies proto ExampleValidator wrote for it, read from `<uri>/Split-*/`."""
    return {
        split: anomalies_pb2.Anomalies.FromString(io_utils.read_bytes_file(path))
        for split, path in split_files(uri, ANOMALIES_FILE).items()
    }


def _one_line(text: str) -> str:
    return " ".join(text.split())


def anomaly_summary(by_split: dict[str, anomalies_pb2.Anomalies]) -> dict[str, str]:
    """Feature name (or "<dataset>") -> what is wrong with it, with the splits where it was seen."""
    reasons: dict[str, dict[str, list[str]]] = {}
    for split, anomalies in sorted(by_split.items()):
        for feature, info in anomalies.anomaly_info.items():
            reason = _one_line(info.description or info.short_description)
            reasons.setdefault(feature, {}).setdefault(reason, []).append(split)
        if anomalies.HasField("dataset_anomaly_info"):
            info = anomalies.dataset_anomaly_info
            reason = _one_line(info.description or info.short_description)
            reasons.setdefault("<dataset>", {}).setdefault(reason, []).append(split)
    return {
        feature: "; ".join(f"{reason} (in {', '.join(splits)})" for reason, splits in found.items())
        for feature, found in sorted(reasons.items())
    }


def gate_message(
    summary: dict[str, str], gate: str = "Data gate", outcome: str = "nothing was trained or pushed"
) -> str:
    """One line: every anomalous feature and its reason, then what to do."""
    features = " | ".join(f"{feature}: {reason}" for feature, reason in summary.items())
    return (
        f"{gate}: {len(summary)} anomalous feature(s), {outcome}. {features}. "
        "Fix these rows in the input data, or update the curated schema if the change is intended."
    )


NOTE = "unlabelled_note"  # the validated schema's custom property: the rows left out without a label


def unlabelled_check(counted: tuple[int, int, list[str]] | None, max_share: float) -> str:
    """The note on the rows left out ("" when none were), or DataValidationError past `max_share`."""
    if counted is None or not counted[0]:
        return ""
    unlabelled, rows, labels = counted
    note = unlabelled_note(unlabelled, rows, labels)
    if unlabelled > max_share * rows:
        raise DataValidationError(
            f"Data gate: {note} ({unlabelled / rows:.1%} of the rows, over the {max_share:.0%} allowed); "
            "nothing was trained or pushed. Fill in the labels or remove those rows, or allow more with "
            "--max-unlabelled-share."
        )
    return note


def check_dates(statistics, gate: str = "Data gate", outcome: str = "nothing was trained or pushed") -> None:
    """DataValidationError, one line, when ExampleGen found values of a date column that are not dates of its
    format (the schema tools do not check time formats): Transform would fail on them."""
    note = invalid_dates_note(recorded_invalid_dates(statistics))
    if note:
        raise DataValidationError(
            f"{gate}: {note}; {outcome}. Fix these values in the input data, or correct the format in the "
            "curated schema (time_domain.string_format)."
        )


@component
def DataGate(
    anomalies: InputArtifact[ExampleAnomalies],
    schema: InputArtifact[Schema],
    statistics: InputArtifact[ExampleStatistics],
    validated_schema: OutputArtifact[Schema],
    max_unlabelled_share: Parameter[float],
) -> None:
    """Fails on any anomaly, on any value of a date column that is not a date, or on more than
    `max_unlabelled_share` of the rows without a label; otherwise
    passes the schema on as `validated_schema`, with the note on the rows left out."""
    summary = anomaly_summary(load_anomalies_at(anomalies.uri))
    if summary:
        raise DataValidationError(gate_message(summary))
    check_dates(statistics)
    note = unlabelled_check(recorded_counts(statistics), max_unlabelled_share)
    pass_schema_on(schema, validated_schema)
    if note:
        print(f"Data gate: {note}", flush=True)
        validated_schema.set_string_custom_property(NOTE, note)
