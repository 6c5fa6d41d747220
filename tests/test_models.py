"""The baseline classifier builder."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from trainer_module.config import TrainerConfig
from trainer_module.models import Head, build_classifier, build_multi_head_model


def toy_data(n=256, seed=0):
    """Class = (x > 0) + category, so both the numeric and the categorical input matter."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 1)).astype("float32")
    category = rng.integers(0, 2, size=(n, 1)).astype("int64")
    label = (x > 0).astype("int64") + category
    return {"x_xf": x, "c_xf": category}, label


def test_outputs_are_class_probabilities():
    model = build_classifier(["x_xf"], {"c_xf": 3}, num_classes=3, config=TrainerConfig())
    features, _ = toy_data(8)
    probabilities = model.predict(features, verbose=0)
    assert probabilities.shape == (8, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_learns_a_rule_that_needs_both_inputs():
    tf.keras.utils.set_random_seed(1)
    model = build_classifier(["x_xf"], {"c_xf": 3}, num_classes=3, config=TrainerConfig(learning_rate=0.05))
    features, label = toy_data()
    model.fit(features, label, epochs=30, batch_size=32, verbose=0)
    test_features, test_label = toy_data(seed=1)
    results = model.evaluate(test_features, test_label, verbose=0, return_dict=True)
    assert results["accuracy"] >= 0.9
    assert results["f1_score"] >= 0.85  # macro F1 over the three classes


def test_hidden_units_come_from_config():
    model = build_classifier(["x_xf"], {}, num_classes=2, config=TrainerConfig(hidden_units=(7, 5, 3)))
    widths = [model.get_layer(f"hidden_{i}").units for i in range(3)]
    assert widths == [7, 5, 3]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"numeric_features": ["x"], "categorical_features": {}, "num_classes": 1},
            "at least 2 classes, got 1",
        ),
        ({"numeric_features": [], "categorical_features": {}, "num_classes": 3}, "no input features"),
    ],
)
def test_rejects_impossible_models(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_classifier(config=TrainerConfig(), **kwargs)


def test_quadratic_mlp_uses_simple_quadratic_hidden_layers():
    from trainer_module.layers import SimpleQuadratic

    model = build_classifier(["x_xf"], {}, num_classes=2, config=TrainerConfig(model="quadratic_mlp"))
    assert isinstance(model.get_layer("hidden_0"), SimpleQuadratic)


def test_multi_head_model_has_one_loss_and_metrics_per_named_output():
    tf.keras.utils.set_random_seed(2)
    heads = [
        Head("species", "classification", num_classes=3),
        Head("mass", "regression", label_mean=4000.0, label_stddev=800.0),
    ]
    config = TrainerConfig(
        model="multi_output", units=16, loss="huber", huber_threshold=250.0, learning_rate=0.02
    )
    model = build_multi_head_model(["x_xf"], {"c_xf": 3}, heads, config)
    assert sorted(model.output_names) == ["mass", "species"]
    assert type(model.loss["mass"]).__name__ == "Huber" and model.loss["mass"].threshold == 250.0
    assert isinstance(model.loss["species"], tf.keras.losses.SparseCategoricalCrossentropy)
    assert model.compiled_loss._loss_weights["mass"] == pytest.approx(1 / 800.0**2)

    features, label = toy_data(512)
    mass = (4000.0 + 800.0 * features["x_xf"]).astype("float32")  # grams, linear in x
    history = model.fit(features, {"species": label, "mass": mass}, epochs=40, batch_size=64, verbose=0)
    results = {k: v[-1] for k, v in history.history.items()}
    assert results["species_accuracy"] >= 0.9
    assert results["mass_rmse"] < 200  # grams; the label's spread is 800
    assert {"species_f1_score", "mass_mae"} <= set(results)
    predictions = model.predict(features, verbose=0)
    assert predictions["species"].shape == (512, 3)
    assert 1500 < float(np.median(predictions["mass"])) < 6500  # in grams, not standardized units


def test_multi_head_model_needs_two_heads():
    with pytest.raises(ValueError, match="at least 2 heads"):
        build_multi_head_model(["x_xf"], {}, [Head("y", "classification", num_classes=2)], TrainerConfig())
