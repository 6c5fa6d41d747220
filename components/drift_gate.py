"""The drift gate: stops a run whose new span's data distribution moved away from the previous span's.

ExampleValidator passes no previous statistics to TFDV, so the drift comparators of a schema never fire
there. This component compares the training split's statistics with the previous span's, using the
schema's comparators (`drift_comparator`: L-infinity distance for categorical features, Jensen-Shannon
divergence for numeric ones), and raises `DriftError` naming every drifted feature and its distance. Like
the data gate, its output is the schema the rest of the pipeline uses, so nothing after it runs on
drifted data.
"""

import os

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types.standard_artifacts import ExampleStatistics, Schema

from components.data_gate import SCHEMA_FILE, pass_schema_on, split_files

STATISTICS_FILE = "FeatureStats.pb"
COMPARED_SPLIT = "train"
DRIFT_REASONS = {
    anomalies_pb2.AnomalyInfo.COMPARATOR_L_INFTY_HIGH,
    anomalies_pb2.AnomalyInfo.COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH,
    anomalies_pb2.AnomalyInfo.COMPARATOR_NORMALIZED_ABSOLUTE_DIFFERENCE_HIGH,
}


class DriftError(RuntimeError):
    """The new span's data drifted from the previous span's beyond the schema's thresholds."""


def load_split_statistics(uri: str, split: str = COMPARED_SPLIT):
    return tfdv.load_stats_binary(split_files(uri, STATISTICS_FILE)[split])


def drifted_features(statistics, previous, schema) -> dict[str, str]:
    """Feature -> the comparator's finding (distance and threshold), for features past their threshold."""
    anomalies = tfdv.validate_statistics(statistics, schema, previous_statistics=previous)
    found = {}
    for feature, info in sorted(anomalies.anomaly_info.items()):
        reasons = [" ".join(r.description.split()) for r in info.reason if r.type in DRIFT_REASONS]
        if reasons:
            found[feature] = "; ".join(reasons)
    return found


def drift_message(found: dict[str, str]) -> str:
    features = " | ".join(f"{feature}: {finding}" for feature, finding in found.items())
    return (
        f"Drift gate: {len(found)} feature(s) drifted from the previous span, nothing was trained or pushed. "
        f"{features}. Check the new span's data; if the change is real and expected, raise the feature's "
        "drift_comparator threshold in the curated schema."
    )


@component
def DriftGate(
    statistics: InputArtifact[ExampleStatistics],
    schema: InputArtifact[Schema],
    checked_schema: OutputArtifact[Schema],
    previous_statistics_uri: Parameter[str] = "",
) -> None:
    """Fails when a feature drifted from `previous_statistics_uri` (empty: no previous span, nothing to
    compare); otherwise passes the schema on as `checked_schema`."""
    schema_path = os.path.join(schema.uri, SCHEMA_FILE)
    if previous_statistics_uri:
        found = drifted_features(
            load_split_statistics(statistics.uri),
            load_split_statistics(previous_statistics_uri),
            tfdv.load_schema_text(schema_path),
        )
        if found:
            raise DriftError(drift_message(found))
    pass_schema_on(schema, checked_schema)
