"""What kind of model a label asks for, decided from the schema (and, for integer labels, the data)."""

from __future__ import annotations

from tensorflow_metadata.proto.v0 import schema_pb2

from trainer_module.features import CLASSIFICATION, REGRESSION

# An integer label with at most this many distinct values is a class label; with more, a quantity.
MAX_INTEGER_CLASSES = 20


class LabelError(ValueError):
    """The label column cannot be used as asked."""


def label_feature(schema: schema_pb2.Schema, label: str) -> schema_pb2.Feature:
    for feature in schema.feature:
        if feature.name == label:
            return feature
    names = ", ".join(f.name for f in schema.feature)
    raise LabelError(f"label column {label!r} is not in the schema; its columns are: {names}")


def serving_excluded_features(schema: schema_pb2.Schema) -> list[str]:
    """Features absent in the SERVING environment: in a drafted or curated schema, the label."""
    return [f.name for f in schema.feature if "SERVING" in f.not_in_environment]


def infer_task(schema: schema_pb2.Schema, label: str, distinct_values: int | None = None) -> str:
    """BYTES -> classification; FLOAT -> regression; INT -> classification when it has few values.

    `distinct_values` is how many different values the label takes in the data; it decides integer labels
    whose schema gives no small `int_domain`.
    """
    feature = label_feature(schema, label)
    if feature.type == schema_pb2.BYTES:
        return CLASSIFICATION
    if feature.type == schema_pb2.FLOAT:
        return REGRESSION
    if feature.type == schema_pb2.INT:
        domain = feature.int_domain
        if feature.HasField("int_domain") and domain.HasField("min") and domain.HasField("max"):
            return CLASSIFICATION if domain.max - domain.min + 1 <= MAX_INTEGER_CLASSES else REGRESSION
        if feature.HasField("int_domain") and domain.is_categorical:
            return CLASSIFICATION
        if distinct_values is not None:
            return CLASSIFICATION if distinct_values <= MAX_INTEGER_CLASSES else REGRESSION
        return CLASSIFICATION
    raise LabelError(
        f"label column {label!r} has type {schema_pb2.FeatureType.Name(feature.type)}, "
        "which is neither a class (string, integer) nor a quantity (float)"
    )
