"""Drafts a schema from a CSV directory for the user to curate (`python -m pipeline schema`)."""

from __future__ import annotations

import os
import tempfile

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from pipeline.task import infer_task, label_feature

TRAINING, SERVING = "TRAINING", "SERVING"


def _relax_optional_value_counts(schema: schema_pb2.Schema) -> None:
    """CsvExampleGen writes an empty CSV field as an empty value list, which TFDV's CSV reader counts as
    missing: a feature that is sometimes empty must accept zero values, or its own data is an anomaly."""
    for feature in schema.feature:
        if feature.presence.min_fraction < 1.0 and feature.HasField("value_count"):
            feature.value_count.ClearField("min")


def draft_schema(
    data_root: str, label: str
) -> tuple[schema_pb2.Schema, statistics_pb2.DatasetFeatureStatistics]:
    """Infers a schema from every file in `data_root` with the label excluded from SERVING."""
    with tempfile.TemporaryDirectory(prefix="schema-draft-") as scratch:  # TFDV writes the statistics too
        stats_list = tfdv.generate_statistics_from_csv(
            data_location=os.path.join(data_root, "*"), output_path=os.path.join(scratch, "stats.tfrecord")
        )
    schema = tfdv.infer_schema(stats_list, infer_feature_shape=False)
    _relax_optional_value_counts(schema)
    schema.default_environment[:] = [TRAINING, SERVING]
    feature = label_feature(schema, label)
    feature.not_in_environment.append(SERVING)
    # A training row without a label is an anomaly, whatever the sample showed.
    feature.presence.min_fraction = 1.0
    return schema, stats_list.datasets[0]


def _numeric_range(stats: statistics_pb2.FeatureNameStatistics) -> str | None:
    if stats.HasField("num_stats"):
        return f"{stats.num_stats.min:g} .. {stats.num_stats.max:g}"
    return None


def review_notes(
    schema: schema_pb2.Schema, stats: statistics_pb2.DatasetFeatureStatistics, label: str
) -> list[str]:
    """What the user should check before using the draft, one line each."""
    by_name = {s.path.step[0]: s for s in stats.features if s.path.step}
    label_stats = by_name.get(label)
    distinct = (
        label_stats.string_stats.unique if label_stats and label_stats.HasField("string_stats") else None
    )
    notes = [
        f"label {label!r}: task {infer_task(schema, label, distinct)}; required in TRAINING, "
        "absent in SERVING",
        f"{int(stats.num_examples)} rows, {len(schema.feature)} columns read",
    ]
    for feature in schema.feature:
        if feature.name == label:
            continue
        kind = schema_pb2.FeatureType.Name(feature.type)
        required = "required" if feature.presence.min_fraction >= 1.0 else "may be missing"
        line = f"{feature.name}: {kind}, {required}"
        if feature.domain:
            domain = next(d for d in schema.string_domain if d.name == feature.domain)
            line += f"; only these values are allowed: {', '.join(domain.value)}"
        elif (observed := _numeric_range(by_name[feature.name])) is not None:
            line += f"; observed {observed}: add an int_domain/float_domain with plausible bounds"
        notes.append(line)
    notes.append(
        "Check each type, whether each column must always be present, and each list of allowed values; "
        "any row that breaks the schema will stop the pipeline at its data gate."
    )
    return notes


def write_schema(schema: schema_pb2.Schema, path: str, notes: list[str]) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tfdv.write_schema_text(schema, path)
    with open(path) as f:
        body = f.read()
    header = "".join(f"# {line}\n" for line in ["Drafted by `python -m pipeline schema`; review:"] + notes)
    with open(path, "w") as f:
        f.write(header + "\n" + body)
