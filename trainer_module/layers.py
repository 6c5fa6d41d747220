"""Custom Keras layers."""

from __future__ import annotations

import tensorflow as tf


@tf.keras.utils.register_keras_serializable(package="trainer_module")
class Denormalize(tf.keras.layers.Layer):
    """Maps a standardized prediction back to the label's units: `x * stddev + mean`.

    Lets a regression network work on a unit-scale target while the model, and so the serving signature and
    the Evaluator, speak in the label's own units.
    """

    def __init__(self, mean: float, stddev: float, **kwargs):
        super().__init__(**kwargs)
        if not stddev > 0:
            raise ValueError(f"stddev must be positive, got {stddev!r}")
        self.mean = float(mean)
        self.stddev = float(stddev)

    def call(self, inputs):
        return inputs * self.stddev + self.mean

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}
