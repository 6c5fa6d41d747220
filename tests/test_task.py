"""Which task a label asks for."""

from __future__ import annotations

import pytest
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from pipeline.task import LabelError, infer_task, serving_excluded_features


def schema(text: str) -> schema_pb2.Schema:
    return text_format.Parse(text, schema_pb2.Schema())


MIXED = schema(
    """
    feature { name: "species" type: BYTES not_in_environment: "SERVING" }
    feature { name: "mass" type: FLOAT }
    feature { name: "rings" type: INT }
    feature { name: "grade" type: INT int_domain { min: 1 max: 5 } }
    feature { name: "count" type: INT int_domain { min: 0 max: 1000 } }
    """
)


@pytest.mark.parametrize(
    "label, distinct, task",
    [
        ("species", None, "classification"),
        ("mass", None, "regression"),
        ("grade", None, "classification"),  # a small int_domain decides
        ("count", 3, "regression"),  # so does a large one, whatever the sample holds
        ("rings", 2, "classification"),  # no domain: the number of distinct values decides
        ("rings", 29, "regression"),
    ],
)
def test_task_follows_label_type_and_cardinality(label, distinct, task):
    assert infer_task(MIXED, label, distinct) == task


def test_unknown_label_lists_the_columns():
    with pytest.raises(
        LabelError, match=r"label column 'age' is not in the schema; its columns are: species, mass"
    ):
        infer_task(MIXED, "age")


def test_the_serving_excluded_feature_is_the_label():
    assert serving_excluded_features(MIXED) == ["species"]
