"""Custom losses against the course's values and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tests.constructor_config import assert_config_holds_the_constructor_arguments
from trainer_module.losses import (
    ContrastiveLoss,
    Huber,
    HuberLossFunction,
    RootMeanSquaredError,
    contrastive_loss,
    contrastive_loss_with_margin,
    huber,
    my_huber_loss,
    rmse,
)

XS = [-1.0, 0.0, 1.0, 2.0, 3.0, 4.0]
YS = [-3.0, -1.0, 1.0, 3.0, 5.0, 7.0]


def test_rmse_of_the_course_toy_data_is_exact():
    assert float(rmse(XS, YS)) == pytest.approx(1.7795130420052185, abs=1e-7)
    assert float(RootMeanSquaredError()(XS, YS)) == pytest.approx(1.7795130420052185, abs=1e-7)


def test_huber_is_quadratic_inside_the_threshold_and_linear_outside():
    y_true = [0.0, 0.0, 0.0, 0.0]
    y_pred = [0.5, -1.0, 3.0, -4.0]
    # threshold 1: 0.125, 0.5 (on the edge: quadratic), 1*(3 - 0.5) = 2.5, 1*(4 - 0.5) = 3.5
    np.testing.assert_allclose(huber(y_true, y_pred, 1.0).numpy(), [0.125, 0.5, 2.5, 3.5])
    # threshold 2: 0.125, 0.5, 2*(3 - 1) = 4, 2*(4 - 1) = 6
    np.testing.assert_allclose(huber(y_true, y_pred, 2.0).numpy(), [0.125, 0.5, 4.0, 6.0])


def test_wrapper_and_class_agree_with_the_function():
    y_true, y_pred = [[1.0], [2.0], [3.0]], [[1.5], [4.0], [-1.0]]
    expected = float(tf.reduce_mean(huber(y_true, y_pred, 1.5)))
    assert float(tf.reduce_mean(my_huber_loss(1.5)(y_true, y_pred))) == pytest.approx(expected)
    assert float(Huber(threshold=1.5)(y_true, y_pred)) == pytest.approx(expected)


def test_contrastive_loss_on_hand_computed_pairs():
    # similar pair at d=0.5 -> 0.25; different pair at d=0.2 (margin 1) -> 0.64; different at d=1.5 -> 0
    y, d = [1.0, 0.0, 0.0], [0.5, 0.2, 1.5]
    assert float(contrastive_loss(y, d)) == pytest.approx((0.25 + 0.64 + 0.0) / 3)
    assert float(contrastive_loss(y, d, margin=2.0)) == pytest.approx((0.25 + 3.24 + 0.25) / 3)
    assert float(contrastive_loss_with_margin(2.0)(y, d)) == pytest.approx((0.25 + 3.24 + 0.25) / 3)
    assert float(ContrastiveLoss(margin=2.0)(y, d)) == pytest.approx((0.25 + 3.24 + 0.25) / 3)


@pytest.mark.parametrize(
    "factory, message",
    [(lambda: Huber(threshold=0), "threshold must be positive, got 0"),
     (lambda: my_huber_loss(-1), "threshold must be positive, got -1"),
     (lambda: ContrastiveLoss(margin=0.0), "margin must be positive, got 0.0")],
)  # fmt: skip
def test_parameters_are_validated(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


@pytest.mark.parametrize(
    "cls, arguments",
    [(Huber, {"threshold": 2.5, "name": "h"}), (HuberLossFunction, {"threshold": 2.5}),
     (ContrastiveLoss, {"margin": 0.7, "name": "c"}), (RootMeanSquaredError, {"name": "r"})],
    ids=["Huber", "my_huber_loss", "ContrastiveLoss", "RootMeanSquaredError"],
)  # fmt: skip
def test_config_holds_every_constructor_argument(cls, arguments):
    assert_config_holds_the_constructor_arguments(cls, **arguments)


@pytest.mark.parametrize("file_name", ["model", "model.keras"], ids=["SavedModel", "keras"])
def test_the_wrappers_threshold_survives_saving(file_name, tmp_path):
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.Input((1,)), tf.keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss=my_huber_loss(3.5))
    model.fit(np.array(XS)[:, None], np.array(YS)[:, None], epochs=2, verbose=0)
    model.save(tmp_path / file_name)
    loaded = tf.keras.models.load_model(tmp_path / file_name)
    # Errors of 3 and -5 tell threshold 3.5 (4.5, 11.375) from Keras's own huber_loss with delta 1 (2.5, 4.5).
    y_true, y_pred = tf.constant([[0.0], [0.0]]), tf.constant([[3.0], [-5.0]])
    np.testing.assert_allclose(loaded.loss(y_true, y_pred).numpy().ravel(), [4.5, 11.375])
    x, y = np.array(XS)[:, None], np.array(YS)[:, None]
    assert loaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0), rel=1e-6)


def test_saved_model_round_trip_keeps_the_configured_loss(tmp_path):
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.Input((1,)), tf.keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss=Huber(threshold=2.5))
    model.fit(np.array(XS)[:, None], np.array(YS)[:, None], epochs=2, verbose=0)
    model.save(tmp_path / "model", save_format="tf")
    loaded = tf.keras.models.load_model(tmp_path / "model")
    assert isinstance(loaded.loss, Huber) and loaded.loss.threshold == 2.5
    np.testing.assert_allclose(
        loaded.predict(np.array([[10.0]]), verbose=0), model.predict(np.array([[10.0]]), verbose=0)
    )


def toy_regression(loss, epochs: int) -> tuple[tf.keras.Model, float]:
    """The course's toy regression: Dense(1) on xs/ys (y = 2x - 1), SGD, `epochs`; returns the model and
    its prediction at 10."""
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.Input((1,)), tf.keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss=loss)
    model.fit(np.array(XS)[:, None], np.array(YS)[:, None], epochs=epochs, verbose=0)
    return model, float(model.predict(np.array([[10.0]]), verbose=0)[0, 0])


def test_toy_regression_with_mse_predicts_18_8_to_19_0_at_10_as_the_course_says():
    _, predicted = toy_regression("mse", 500)
    assert 18.8 <= predicted <= 19.0  # 18.98 measured (seeds 0-4: 18.978-18.985)


def test_toy_regression_with_huber_needs_more_epochs_than_the_course_gives():
    """The course's setup as written (500 epochs) leaves the wrapper's Huber (threshold 1) at 18.51-18.78
    over seeds 0-4, below the course's 18.8-19.0: beyond the threshold Huber's gradient is the threshold,
    not the error, so from the same start it closes the gap more slowly than MSE. Another 500 epochs
    bring it to the course's range (18.96-18.98 measured)."""
    model, at_500 = toy_regression(my_huber_loss(1.0), 500)
    _, mse_at_500 = toy_regression("mse", 500)
    assert 18.4 <= at_500 < mse_at_500
    model.fit(np.array(XS)[:, None], np.array(YS)[:, None], epochs=500, verbose=0)
    assert 18.8 <= float(model.predict(np.array([[10.0]]), verbose=0)[0, 0]) <= 19.0
