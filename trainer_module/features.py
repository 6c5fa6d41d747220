"""Names shared by preprocessing, training and serving."""

# The transformed label is an index into this vocabulary; serving maps indices back to class names with it.
LABEL_VOCABULARY = "label"


def transformed_name(key: str) -> str:
    return f"{key}_xf"


def vocabulary_name(key: str) -> str:
    """The tf.Transform vocabulary file of a categorical feature."""
    return f"{key}_vocab"
