"""Custom Keras layers: subclassed (`SimpleDense`, `SimpleQuadratic`, `Denormalize`) and Lambda-based."""

from __future__ import annotations

import tensorflow as tf

PACKAGE = "trainer_module"


def _check_units(units) -> int:
    if not isinstance(units, int) or units <= 0:
        raise ValueError(f"units must be a positive integer, got {units!r}")
    return units


class _UnitsLayer(tf.keras.layers.Layer):
    """Shared constructor and config of the layers below: `units` outputs, then `activation`."""

    def __init__(self, units: int = 32, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.units = _check_units(units)
        self.activation = tf.keras.activations.get(activation)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": tf.keras.activations.serialize(self.activation),
        }


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class SimpleDense(_UnitsLayer):
    """`activation(x @ w + b)` with w ~ random normal (in, units) and b = zeros (units,)."""

    def build(self, input_shape):
        self.w = self.add_weight(
            name="kernel",
            shape=(int(input_shape[-1]), self.units),
            initializer="random_normal",
            trainable=True,
        )
        self.b = self.add_weight(name="bias", shape=(self.units,), initializer="zeros", trainable=True)
        super().build(input_shape)

    def call(self, inputs):
        return self.activation(tf.matmul(inputs, self.w) + self.b)


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class SimpleQuadratic(_UnitsLayer):
    """`activation(x^2 @ a + x @ b + c)`: a, b ~ random normal (in, units), c = zeros (units,)."""

    def build(self, input_shape):
        shape = (int(input_shape[-1]), self.units)
        self.a = self.add_weight(name="a", shape=shape, initializer="random_normal", trainable=True)
        self.b = self.add_weight(name="b", shape=shape, initializer="random_normal", trainable=True)
        self.c = self.add_weight(name="c", shape=(self.units,), initializer="zeros", trainable=True)
        super().build(input_shape)

    def call(self, inputs):
        return self.activation(tf.matmul(tf.square(inputs), self.a) + tf.matmul(inputs, self.b) + self.c)


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class Denormalize(tf.keras.layers.Layer):
    """Maps a standardized prediction back to the label's units: `x * stddev + mean`.

    Lets a regression network work on a unit-scale target while the model, and so the serving signature and
    the Evaluator, speak in the label's own units.
    """

    def __init__(self, mean: float = 0.0, stddev: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        if not stddev > 0:
            raise ValueError(f"stddev must be positive, got {stddev!r}")
        self.mean = float(mean)
        self.stddev = float(stddev)

    def call(self, inputs):
        return inputs * self.stddev + self.mean

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "stddev": self.stddev}


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class NamedLambda(tf.keras.layers.Lambda):
    """A Lambda layer over a registered function, saved by the function's registered name.

    Keras' Lambda pickles any Python function as bytecode, which `load_model` refuses in safe mode and which
    breaks across Python versions; a name survives both.
    """

    def get_config(self):
        config = super().get_config()
        config["function"] = tf.keras.utils.get_registered_name(self.function)
        config["function_type"] = "function"
        return config


# The functions of the Lambda layers, registered so that NamedLambda can save them by name.
@tf.keras.utils.register_keras_serializable(package=PACKAGE)
def absolute_value(x):
    return tf.abs(x)


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
def clipped_relu(x):
    """The course's relu variant: max(-0.1, x)."""
    return tf.maximum(-0.1, x)


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
def euclidean_distance(vectors):
    """sqrt(max(sum((a - b)^2), epsilon)) per row, shape [batch, 1]; epsilon keeps the gradient finite."""
    a, b = vectors
    squared = tf.reduce_sum(tf.square(a - b), axis=1, keepdims=True)
    return tf.sqrt(tf.maximum(squared, tf.keras.backend.epsilon()))


def absolute_value_layer(**kwargs) -> NamedLambda:
    return NamedLambda(absolute_value, **kwargs)


def clipped_relu_layer(**kwargs) -> NamedLambda:
    return NamedLambda(clipped_relu, **kwargs)


def euclidean_distance_layer(**kwargs) -> NamedLambda:
    return NamedLambda(euclidean_distance, output_shape=(1,), **kwargs)
