"""Custom layers: the course's exact values, learning, and serialization round trips."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tests.constructor_config import assert_config_holds_the_constructor_arguments
from trainer_module.layers import (
    Denormalize,
    SimpleDense,
    SimpleQuadratic,
    absolute_value_layer,
    clipped_relu_layer,
    euclidean_distance_layer,
)

XS = np.array([-1.0, 0.0, 1.0, 2.0, 3.0, 4.0], dtype="float32").reshape(-1, 1)
YS = np.array([-3.0, -1.0, 1.0, 3.0, 5.0, 7.0], dtype="float32").reshape(-1, 1)


def test_simple_quadratic_with_all_weights_two_maps_four_to_42():
    layer = SimpleQuadratic(units=1)
    layer.build((None, 1))
    for weight in (layer.a, layer.b, layer.c):
        weight.assign(tf.fill(weight.shape, 2.0))
    assert float(layer(tf.constant([[4.0]]))[0, 0]) == 42.0  # 2*16 + 2*4 + 2


def test_simple_dense_learns_the_line_of_the_toy_data():
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.Input((1,)), SimpleDense(units=1)])
    model.compile(optimizer=tf.keras.optimizers.SGD(0.05), loss="mse")
    model.fit(XS, YS, epochs=500, verbose=0)
    w, b = model.layers[0].w.numpy()[0, 0], model.layers[0].b.numpy()[0]
    assert w == pytest.approx(2.0, abs=0.05) and b == pytest.approx(-1.0, abs=0.1)


def test_simple_dense_applies_its_activation():
    layer = SimpleDense(units=2, activation="relu")
    layer.build((None, 2))
    layer.w.assign([[1.0, -1.0], [1.0, -1.0]])
    np.testing.assert_allclose(layer(tf.constant([[1.0, 2.0]])).numpy(), [[3.0, 0.0]])


def test_lambda_layers_compute_their_functions():
    x = tf.constant([[-2.0, -0.05, 0.5]])
    np.testing.assert_allclose(absolute_value_layer()(x).numpy(), [[2.0, 0.05, 0.5]])
    np.testing.assert_allclose(clipped_relu_layer()(x).numpy(), [[-0.1, -0.05, 0.5]])
    a, b = tf.constant([[0.0, 0.0], [1.0, 1.0]]), tf.constant([[3.0, 4.0], [1.0, 1.0]])
    distance = euclidean_distance_layer()([a, b]).numpy()
    assert distance[0, 0] == pytest.approx(5.0)
    assert distance[1, 0] == pytest.approx(np.sqrt(tf.keras.backend.epsilon()))  # floored, not 0


@pytest.mark.parametrize("units", [0, -3, 2.5])
def test_units_are_validated(units):
    with pytest.raises(ValueError, match=f"units must be a positive integer, got {units}"):
        SimpleDense(units=units)


@pytest.mark.parametrize(
    "cls, arguments",
    [(SimpleDense, {"units": 4, "activation": "relu"}), (SimpleQuadratic, {"units": 3, "activation": "tanh"}),
     (Denormalize, {"mean": 10.0, "stddev": 2.0})],
    ids=["SimpleDense", "SimpleQuadratic", "Denormalize"],
)  # fmt: skip
def test_config_holds_every_constructor_argument(cls, arguments):
    assert_config_holds_the_constructor_arguments(cls, **arguments)


def test_saved_model_round_trip_of_a_model_using_every_layer(tmp_path):
    left, right = tf.keras.Input((3,)), tf.keras.Input((3,))
    x = absolute_value_layer(name="abs")(left)
    x = clipped_relu_layer(name="clip")(x)
    x = SimpleQuadratic(4, "relu")(x)
    x = SimpleDense(2)(x)
    x = Denormalize(5.0, 3.0)(x)
    distance = euclidean_distance_layer(name="distance")([left, right])
    model = tf.keras.Model([left, right], [x, distance])
    model.save(tmp_path / "model", save_format="tf")
    loaded = tf.keras.models.load_model(tmp_path / "model")  # safe mode: no pickled lambdas in the file
    inputs = [np.random.default_rng(0).normal(size=(5, 3)).astype("float32") for _ in range(2)]
    for before, after in zip(model(inputs), loaded(inputs), strict=True):
        np.testing.assert_allclose(before.numpy(), after.numpy(), rtol=1e-6)
