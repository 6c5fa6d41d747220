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


def label_tasks(custom_config: dict) -> dict[str, str]:
    """label -> task (classification or regression) of the model's heads, the main label first.

    `custom_config["labels"]` lists every head as [label, task] pairs (a list: TFX serializes custom_config
    with sorted keys, so a dict would lose the order); a config naming only `label_key` (and `task`) has one.
    """
    if "labels" in custom_config:
        return {label: task for label, task in custom_config["labels"]}
    return {custom_config["label_key"]: custom_config.get("task", CLASSIFICATION)}


def label_vocabulary(label: str, main: bool = True) -> str:
    """The tf.Transform vocabulary of a classification label: `label` for the main head."""
    return LABEL_VOCABULARY if main else f"{safe_name(label)}_{LABEL_VOCABULARY}"


def output_key(label: str, name: str, prefixed: bool = False) -> str:
    """A serving output of the head of `label`. A single-headed model's outputs have plain names
    (`probabilities`, `class_ids`, `classes` or `predictions`); a multi-output model prefixes each with its
    label, e.g. `species_classes`, `body_mass_g_predictions`."""
    return f"{safe_name(label)}_{name}" if prefixed else name


def prediction_name(task: str) -> str:
    """The serving output the Evaluator scores: class probabilities, or values in the label's units."""
    return "predictions" if task == REGRESSION else "probabilities"
