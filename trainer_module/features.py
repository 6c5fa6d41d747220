"""Names shared by preprocessing, training and serving."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

# The transformed label of a classification task is an index into this vocabulary; serving maps indices
# back to class names with it.
LABEL_VOCABULARY = "label"

CLASSIFICATION = "classification"
REGRESSION = "regression"
TASKS = (CLASSIFICATION, REGRESSION)

# A similarity model's two images closer than this distance show the same class.
SAME_CLASS_DISTANCE = 0.5


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


@dataclass(frozen=True)
class ImageInput:
    """Where a task's images are and what Transform makes of them.

    `shape` is (height, width, channels) as stored; Transform decodes the PNG, resizes it to `resize` x
    `resize` pixels (None: as stored) and scales it to [0, 1]. A similarity task's evaluation examples are
    pairs: `pair_feature` holds the second image and `pair_label` is 1 when both show the same class.
    """

    feature: str = "image"
    shape: tuple[int, int, int] = (8, 8, 1)
    resize: int | None = None
    pair_feature: str | None = None
    pair_label: str | None = None

    def __post_init__(self):
        if len(self.shape) != 3 or min(self.shape) <= 0 or self.shape[2] not in (1, 3):
            raise ValueError(
                f"image shape must be (height, width, channels) with 1 or 3 channels, got {self.shape!r}"
            )
        if self.resize is not None and self.resize <= 0:
            raise ValueError(f"image resize must be positive, got {self.resize!r}")
        if (self.pair_feature is None) != (self.pair_label is None):
            raise ValueError("pair_feature and pair_label go together: set both (similarity) or neither")

    @property
    def model_shape(self) -> tuple[int, int, int]:
        """The shape the model sees, after Transform."""
        height, width, channels = self.shape
        return (self.resize, self.resize, channels) if self.resize else (height, width, channels)

    @property
    def image_features(self) -> tuple[str, ...]:
        return (self.feature,) + ((self.pair_feature,) if self.pair_feature else ())

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ImageInput:
        return cls(**{**values, "shape": tuple(values["shape"])})


def image_input(custom_config: dict) -> ImageInput | None:
    """The images of a Transform/Trainer custom_config; None for tabular data."""
    values = custom_config.get("images")
    return ImageInput.from_dict(values) if values else None
