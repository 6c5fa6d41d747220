"""Custom metrics."""

from __future__ import annotations

import tensorflow as tf

from trainer_module.features import SAME_CLASS_DISTANCE

PACKAGE = "trainer_module"
AVERAGES = ("binary", "macro")

# The metrics' Python branches only on configuration, never on a tensor, so AutoGraph (which Keras applies to
# every `update_state` and `result`) has nothing to rewrite: left as written, tracing them is 0.7 s shorter.
as_written = tf.autograph.experimental.do_not_convert


def f1_from_counts(tp, fp, fn):
    """F1 = 2PR / (P + R), with precision and recall 1.0 on a zero denominator (as in the course)."""
    tp, fp, fn = (tf.cast(v, tf.float32) for v in (tp, fp, fn))
    precision = tf.math.divide_no_nan(tp, tp + fp) + tf.cast(tp + fp == 0, tf.float32)
    recall = tf.math.divide_no_nan(tp, tp + fn) + tf.cast(tp + fn == 0, tf.float32)
    return tf.math.divide_no_nan(2 * precision * recall, precision + recall)


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class F1Score(tf.keras.metrics.Metric):
    """F1 from running true/false positive/negative counts.

    `average="binary"`: y_true in {0, 1}; y_pred a probability of class 1 (thresholded at `threshold`) or
    two class probabilities. `average="macro"`: y_true class indices, y_pred class probabilities over
    `num_classes`; the F1 of each class against the rest, averaged.
    """

    def __init__(self, average: str = "binary", num_classes: int = 2, threshold: float = 0.5, name="f1_score",
                 **kwargs):  # fmt: skip
        super().__init__(name=name, **kwargs)
        if average not in AVERAGES:
            raise ValueError(f"average must be one of {', '.join(AVERAGES)}, got {average!r}")
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        self.average = average
        self.num_classes = num_classes
        self.threshold = float(threshold)
        shape = () if average == "binary" else (num_classes,)
        self.tp = self.add_weight(name="tp", shape=shape, initializer="zeros")
        self.fp = self.add_weight(name="fp", shape=shape, initializer="zeros")
        self.tn = self.add_weight(name="tn", shape=shape, initializer="zeros")
        self.fn = self.add_weight(name="fn", shape=shape, initializer="zeros")

    def _predicted_and_true(self, y_true, y_pred):
        y_true = tf.reshape(tf.cast(y_true, tf.int64), [-1])
        y_pred = tf.convert_to_tensor(y_pred)
        if self.average == "binary" and (y_pred.shape.rank == 1 or y_pred.shape[-1] == 1):
            predicted = tf.cast(tf.reshape(y_pred, [-1]) >= self.threshold, tf.int64)
        else:
            predicted = tf.argmax(y_pred, axis=-1)
        return tf.reshape(predicted, [-1]), y_true

    @as_written
    def update_state(self, y_true, y_pred, sample_weight=None):
        predicted, actual = self._predicted_and_true(y_true, y_pred)
        if self.average == "binary":
            predicted, actual = predicted[:, None] == 1, actual[:, None] == 1
        else:
            classes = tf.range(self.num_classes, dtype=tf.int64)
            predicted, actual = predicted[:, None] == classes, actual[:, None] == classes
        weight = tf.ones_like(predicted, tf.float32)
        if sample_weight is not None:
            weight = weight * tf.reshape(tf.cast(sample_weight, tf.float32), [-1, 1])

        def count(mask):
            return tf.reduce_sum(tf.cast(mask, tf.float32) * weight, axis=0)

        squeeze = (lambda v: tf.squeeze(v, 0)) if self.average == "binary" else (lambda v: v)
        self.tp.assign_add(squeeze(count(predicted & actual)))
        self.fp.assign_add(squeeze(count(predicted & ~actual)))
        self.tn.assign_add(squeeze(count(~predicted & ~actual)))
        self.fn.assign_add(squeeze(count(~predicted & actual)))

    @as_written
    def result(self):
        return tf.reduce_mean(f1_from_counts(self.tp, self.fp, self.fn))

    def reset_state(self):
        for variable in (self.tp, self.fp, self.tn, self.fn):
            variable.assign(tf.zeros_like(variable))

    def get_config(self):
        return {
            **super().get_config(),
            "average": self.average,
            "num_classes": self.num_classes,
            "threshold": self.threshold,
        }


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class ClassF1Score(F1Score):
    """F1Score under a name of its own: TFMA and Keras ship metrics called `F1Score`, and TFMA resolves its
    metric configs by class name, so the Evaluator refers to the project's metric by this one."""


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class PairAccuracy(tf.keras.metrics.Mean):
    """Of pairs of a siamese network: the fraction where `distance < threshold` agrees with the label
    (1: the pair shows the same class). y_pred is the distance. Also computed by TFMA in the Evaluator."""

    def __init__(self, threshold: float = SAME_CLASS_DISTANCE, name: str = "pair_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        if not threshold > 0:
            raise ValueError(f"threshold must be positive, got {threshold!r}")
        self.threshold = float(threshold)

    @as_written
    def update_state(self, y_true, y_pred, sample_weight=None):
        same = tf.reshape(tf.cast(y_true, tf.float32), [-1]) > 0.5
        predicted_same = tf.reshape(tf.cast(y_pred, tf.float32), [-1]) < self.threshold
        correct = tf.cast(tf.equal(same, predicted_same), tf.float32)
        if sample_weight is not None:
            sample_weight = tf.reshape(sample_weight, [-1])
        return super().update_state(correct, sample_weight)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}
