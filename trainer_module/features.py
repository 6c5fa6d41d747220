"""Names shared by preprocessing, training and serving."""

import re

# The transformed label of a classification task is an index into this vocabulary; serving maps indices
# back to class names with it.
LABEL_VOCABULARY = "label"

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)


def safe_name(key: str) -> str:
    """`key` usable as a TensorFlow op and Keras layer name (CSV headers may hold spaces, brackets...)."""
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", key)
    return name if re.match(r"[A-Za-z0-9.]", name) else f"f{name}"


def transformed_name(key: str) -> str:
    return f"{safe_name(key)}_xf"


def vocabulary_name(key: str) -> str:
    """The tf.Transform vocabulary file of a categorical feature."""
    return f"{safe_name(key)}_vocab"
