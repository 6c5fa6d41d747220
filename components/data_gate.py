"""The data gate: stops the pipeline when ExampleValidator found anomalies.

ExampleValidator records anomalies but never fails, and its `blessed` property is a per-split JSON value
that `tfx.dsl.Cond` cannot test. The gate reads the anomalies itself and raises `DataValidationError` with
one line naming each anomalous feature and why. Its output is the schema the rest of the pipeline uses, so
Transform, Trainer and everything after them cannot run on data the gate refused.
"""

import os

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types.standard_artifacts import ExampleAnomalies, Schema
from tfx.utils import io_utils

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


@component
def DataGate(
    anomalies: InputArtifact[ExampleAnomalies],
    schema: InputArtifact[Schema],
    validated_schema: OutputArtifact[Schema],
) -> None:
    """Fails on any anomaly; otherwise passes the schema on as `validated_schema`."""
    summary = anomaly_summary(load_anomalies_at(anomalies.uri))
    if summary:
        raise DataValidationError(gate_message(summary))
    pass_schema_on(schema, validated_schema)
