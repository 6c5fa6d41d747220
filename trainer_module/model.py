"""The baseline Keras models, derived from the transformed features."""

from __future__ import annotations

import tensorflow as tf

from trainer_module.config import TrainerConfig
from trainer_module.layers import Denormalize


def _inputs_and_body(
    numeric_features: list[str], categorical_features: dict[str, int], config: TrainerConfig
) -> tuple[dict, tf.Tensor]:
    """Inputs for every feature, one-hot encoded categories, then the hidden layers."""
    if not numeric_features and not categorical_features:
        raise ValueError("the model has no input features; check the schema and the label column")
    inputs = {}
    encoded = []
    for name in sorted(numeric_features):
        inputs[name] = tf.keras.Input(shape=(1,), name=name, dtype=tf.float32)
        encoded.append(inputs[name])
    for name, cardinality in sorted(categorical_features.items()):
        inputs[name] = tf.keras.Input(shape=(1,), name=name, dtype=tf.int64)
        one_hot = tf.keras.layers.CategoryEncoding(
            num_tokens=cardinality, output_mode="one_hot", name=f"{name}_one_hot"
        )(inputs[name])
        encoded.append(one_hot)

    x = tf.keras.layers.Concatenate(name="features")(encoded) if len(encoded) > 1 else encoded[0]
    for i, units in enumerate(config.hidden_units):
        x = tf.keras.layers.Dense(units, activation="relu", name=f"hidden_{i}")(x)
    return inputs, x


def build_classifier(
    numeric_features: list[str],
    categorical_features: dict[str, int],
    num_classes: int,
    config: TrainerConfig,
) -> tf.keras.Model:
    """A feed-forward classifier over z-scored numbers and one-hot categories.

    Args:
      numeric_features: names of float inputs of shape [batch, 1].
      categorical_features: name -> number of distinct indices (vocabulary plus out-of-vocabulary buckets)
        of int inputs of shape [batch, 1].
      num_classes: width of the softmax output.
      config: layer sizes and learning rate.
    """
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
    inputs, x = _inputs_and_body(numeric_features, categorical_features, config)
    outputs = tf.keras.layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    model = tf.keras.Model(inputs=inputs, outputs=outputs)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate=config.learning_rate),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(),
        metrics=[tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def build_regressor(
    numeric_features: list[str],
    categorical_features: dict[str, int],
    label_mean: float,
    label_stddev: float,
    config: TrainerConfig,
) -> tf.keras.Model:
    """A feed-forward regressor whose output is in the label's units (see `Denormalize`)."""
    inputs, x = _inputs_and_body(numeric_features, categorical_features, config)
    standardized = tf.keras.layers.Dense(1, name="standardized_prediction")(x)
    outputs = Denormalize(label_mean, label_stddev, name="prediction")(standardized)
    model = tf.keras.Model(inputs=inputs, outputs=outputs)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate=config.learning_rate),
        loss=tf.keras.losses.MeanSquaredError(),
        metrics=[
            tf.keras.metrics.RootMeanSquaredError(name="rmse"),
            tf.keras.metrics.MeanAbsoluteError(name="mae"),
        ],
    )
    return model
