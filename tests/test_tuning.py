"""The Tuner's search space and the tf.keras tuner, run for real on a toy problem."""

from __future__ import annotations

import keras_tuner
import numpy as np
import pytest
import tensorflow as tf

from trainer_module.config import TrainerConfig
from trainer_module.models import build_classifier
from trainer_module.tuning import TfKerasTuner, objective, search_space


def test_search_space_follows_the_model_and_the_loss():
    mlp = search_space(TrainerConfig(model="mlp"))
    assert [hp.name for hp in mlp.space] == ["learning_rate", "hidden_units"]
    huber = search_space(TrainerConfig(model="quadratic_mlp", loss="huber", huber_threshold=200.0))
    assert huber.get("huber_threshold") == 50.0 and huber.space[2].values == [50.0, 200.0, 800.0]
    assert [hp.name for hp in search_space(TrainerConfig(model="wide_and_deep")).space] == [
        "learning_rate",
        "units",
    ]


@pytest.mark.parametrize(
    "model, labels, name, direction",
    [
        ("mlp", {"species": "classification"}, "val_accuracy", "max"),
        ("wide_and_deep", {"species": "classification"}, "val_probabilities_accuracy", "max"),
        ("quadratic_mlp", {"body_mass_g": "regression"}, "val_rmse", "min"),
        (
            "multi_output",
            {"species": "classification", "body_mass_g": "regression"},
            "val_species_accuracy",
            "max",
        ),
    ],
)
def test_objective_is_the_main_heads_validation_metric(model, labels, name, direction):
    found = objective(TrainerConfig(model=model), labels)
    assert (found.name, found.direction) == (name, direction)


def test_tuned_values_replace_the_configured_ones():
    config = TrainerConfig(hidden_units=(16, 8), learning_rate=0.01)
    tuned = config.with_hyperparameters({"hidden_units": 32, "learning_rate": 0.003, "huber_threshold": 9.0})
    assert tuned.hidden_units == (32, 32) and tuned.learning_rate == 0.003 and tuned.huber_threshold == 9.0
    with pytest.raises(ValueError, match="unknown hyperparameters \\['depth'\\]"):
        config.with_hyperparameters({"depth": 3})


def toy_datasets():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(512, 1)).astype("float32")
    y = (np.abs(x) > 0.674).astype("int64")  # half and half; needs the hidden layer
    dataset = tf.data.Dataset.from_tensor_slices(({"x_xf": x}, y)).batch(32)
    return dataset.take(12).repeat(), dataset.skip(12).repeat()


def test_tf_keras_models_are_searched_and_the_best_trial_wins(tmp_path):
    """The tuner KerasTuner's own Keras Tuner refuses (a tf.keras model) runs every trial."""
    tf.keras.utils.set_random_seed(0)
    config = TrainerConfig(model="mlp", hidden_units=(16,))
    hp = keras_tuner.HyperParameters()
    hp.Choice("learning_rate", [1e-6, 0.05])  # one learns nothing in a few steps, the other learns

    def build(hp):
        return build_classifier(["x_xf"], {}, 2, config.with_hyperparameters(hp.values))

    oracle = keras_tuner.oracles.GridSearchOracle(
        objective=objective(config, {"y": "classification"}), max_trials=2, hyperparameters=hp
    )
    tuner = TfKerasTuner(build, oracle, directory=str(tmp_path), project_name="toy")
    train, evaluation = toy_datasets()
    tuner.search(train, evaluation, epochs=4, steps_per_epoch=12, validation_steps=4)

    trials = tuner.oracle.get_best_trials(2)
    assert len(trials) == 2 and all(t.status == "COMPLETED" for t in trials)
    assert tuner.get_best_hyperparameters()[0].values == {"learning_rate": 0.05}
    assert trials[0].score >= 0.8 and trials[1].score < trials[0].score - 0.1
