"""The baseline classifier builder."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from trainer_module.config import TrainerConfig
from trainer_module.models import build_classifier


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
