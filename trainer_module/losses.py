"""Custom losses: each a pure function (testable on plain arrays) plus a thin serializable class."""

from __future__ import annotations

import tensorflow as tf

PACKAGE = "trainer_module"


def _check_positive(name: str, value) -> float:
    if not value > 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return float(value)


def huber(y_true, y_pred, threshold: float = 1.0):
    """Per element: e^2 / 2 where |e| <= threshold, else threshold * (|e| - threshold / 2)."""
    error = tf.cast(y_true, tf.float32) - tf.cast(y_pred, tf.float32)
    small = tf.abs(error) <= threshold
    return tf.where(small, tf.square(error) / 2, threshold * (tf.abs(error) - threshold / 2))


def my_huber_loss(threshold: float = 1.0):
    """The wrapper form: a loss function with `threshold` fixed, for `compile(loss=...)`.

    What it returns is called like the course's inner function `huber_loss(y_true, y_pred)`, but it is an
    object Keras can save: a closure is saved by its name alone and reloads as Keras's own `huber_loss`
    (delta 1), silently dropping the threshold; this one reloads with it (SavedModel and `.keras`)."""
    return HuberLossFunction(_check_positive("threshold", threshold))


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class HuberLossFunction:
    """`my_huber_loss(threshold)`'s inner function: per-element Huber with `threshold`, saved with it."""

    __name__ = "huber_loss"  # the name Keras gives the loss in logs and metrics

    def __init__(self, threshold: float = 1.0):
        self.threshold = _check_positive("threshold", threshold)

    def __call__(self, y_true, y_pred):
        return huber(y_true, y_pred, self.threshold)

    def get_config(self) -> dict:
        return {"threshold": self.threshold}

    @classmethod
    def from_config(cls, config: dict) -> HuberLossFunction:
        return cls(**config)


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class Huber(tf.keras.losses.Loss):
    """Huber loss with a configurable `threshold`, saved with the model."""

    def __init__(self, threshold: float = 1.0, name: str = "huber", **kwargs):
        super().__init__(name=name, **kwargs)
        self.threshold = _check_positive("threshold", threshold)

    def call(self, y_true, y_pred):
        return huber(y_true, y_pred, self.threshold)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


def rmse(y_true, y_pred):
    """sqrt(mean((y_true - y_pred)^2)) over all elements."""
    error = tf.cast(y_true, tf.float32) - tf.cast(y_pred, tf.float32)
    return tf.sqrt(tf.reduce_mean(tf.square(error)))


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class RootMeanSquaredError(tf.keras.losses.Loss):
    """RMSE as a loss: the square root of the batch's mean squared error."""

    def __init__(self, name: str = "rmse", **kwargs):
        # The square root is taken over the whole batch, so Keras must not average per-example values.
        kwargs.setdefault("reduction", tf.keras.losses.Reduction.NONE)
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return rmse(y_true, y_pred)


def contrastive_loss(y_true, distance, margin: float = 1.0):
    """mean(y * d^2 + (1 - y) * max(margin - d, 0)^2): y = 1 for a similar pair, 0 for a different one."""
    y = tf.cast(y_true, tf.float32)
    d = tf.cast(distance, tf.float32)
    return tf.reduce_mean(y * tf.square(d) + (1.0 - y) * tf.square(tf.maximum(margin - d, 0.0)))


def contrastive_loss_with_margin(margin: float = 1.0):
    margin = _check_positive("margin", margin)

    def contrastive(y_true, distance):
        return contrastive_loss(y_true, distance, margin)

    return contrastive


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class ContrastiveLoss(tf.keras.losses.Loss):
    """Contrastive loss with a configurable `margin`, for siamese networks that output a distance."""

    def __init__(self, margin: float = 1.0, name: str = "contrastive", **kwargs):
        kwargs.setdefault("reduction", tf.keras.losses.Reduction.NONE)
        super().__init__(name=name, **kwargs)
        self.margin = _check_positive("margin", margin)

    def call(self, y_true, distance):
        return contrastive_loss(y_true, distance, self.margin)

    def get_config(self):
        return {**super().get_config(), "margin": self.margin}
