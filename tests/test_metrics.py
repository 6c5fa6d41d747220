"""F1Score: the course's value, counting, the macro option and serialization."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from trainer_module.metrics import F1Score


def test_f1_of_the_course_counts():
    metric = F1Score()
    for variable, value in ((metric.tp, 2), (metric.fp, 5), (metric.tn, 7), (metric.fn, 9)):
        variable.assign(value)
    assert float(metric.result()) == pytest.approx(0.2222, abs=5e-5)


def test_binary_counts_from_probabilities():
    metric = F1Score(threshold=0.5)
    metric.update_state([1, 1, 0, 0, 1], [[0.9], [0.2], [0.7], [0.1], [0.6]])
    assert [float(v) for v in (metric.tp, metric.fp, metric.tn, metric.fn)] == [2.0, 1.0, 1.0, 1.0]
    assert float(metric.result()) == pytest.approx(2 / 3)  # P = R = 2/3
    metric.reset_state()
    assert float(metric.tp) == 0.0


def test_binary_accepts_two_class_softmax_outputs():
    metric = F1Score()
    metric.update_state([1, 0], [[0.2, 0.8], [0.6, 0.4]])
    assert float(metric.result()) == 1.0


def test_zero_denominators_count_as_perfect_precision_and_recall():
    metric = F1Score()
    metric.update_state([0, 0], [[0.1], [0.2]])  # no positives predicted or present
    assert float(metric.result()) == 1.0


def test_macro_average_over_three_classes():
    metric = F1Score(average="macro", num_classes=3)
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = np.eye(3)[[0, 1, 1, 1, 2, 0]]
    metric.update_state(y_true, y_pred)
    # class 0: tp 1, fp 1, fn 1 -> 0.5; class 1: tp 2, fp 1, fn 0 -> 0.8; class 2: tp 1, fp 0, fn 1 -> 2/3
    assert float(metric.result()) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"average": "micro"}, "average must be one of binary, macro, got 'micro'"),
     ({"average": "macro", "num_classes": 1}, "num_classes must be an integer >= 2, got 1")],
)  # fmt: skip
def test_arguments_are_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        F1Score(**kwargs)


def test_config_and_saved_model_round_trip(tmp_path):
    metric = F1Score(average="macro", num_classes=3, name="macro_f1")
    assert F1Score.from_config(metric.get_config()).get_config() == metric.get_config()

    tf.keras.utils.set_random_seed(0)
    model = tf.keras.Sequential([tf.keras.Input((2,)), tf.keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=[metric])
    x, y = np.random.default_rng(0).normal(size=(12, 2)).astype("float32"), np.arange(12) % 3
    before = model.evaluate(x, y, verbose=0, return_dict=True)["macro_f1"]
    model.save(tmp_path / "model", save_format="tf")
    loaded = tf.keras.models.load_model(tmp_path / "model")
    assert loaded.evaluate(x, y, verbose=0, return_dict=True)["macro_f1"] == pytest.approx(before)
