"""Custom losses against the course's values and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from trainer_module.losses import (
    ContrastiveLoss,
    Huber,
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


@pytest.mark.parametrize("loss", [Huber(threshold=2.5), ContrastiveLoss(margin=0.7), RootMeanSquaredError()])
def test_config_round_trip(loss):
    clone = type(loss).from_config(loss.get_config())
    assert clone.get_config() == loss.get_config()


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


def test_toy_regression_with_huber_predicts_about_19_at_10():
    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.Input((1,)), tf.keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss=my_huber_loss(1.0))
    model.fit(np.array(XS)[:, None], np.array(YS)[:, None], epochs=500, verbose=0)
    assert 18.5 <= float(model.predict(np.array([[10.0]]), verbose=0)[0, 0]) <= 19.1
