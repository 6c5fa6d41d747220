"""Hyperparameter search for the TFX Tuner: `tuner_fn` (by dotted path) and its search space.

KerasTuner 1.4 picks its Keras by what `import keras` gives; beside `tf_keras` that is Keras 3, and its
`Tuner` then refuses the project's tf.keras models ("Expected the model-building function ... to return a
valid Keras Model instance"). `TfKerasTuner` builds on KerasTuner's framework-neutral `BaseTuner` instead:
the oracle proposes the values and records the results, and each trial fits a tf.keras model itself.
"""

from __future__ import annotations

from collections.abc import Callable

import keras_tuner
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging
from keras_tuner.engine import base_tuner
from tfx.components.trainer.fn_args_utils import FnArgs
from tfx.components.tuner.component import TunerFnResult

from trainer_module.config import TrainerConfig
from trainer_module.features import REGRESSION, label_tasks, safe_name
from trainer_module.run import build_model, datasets, with_label_per_output

# Searched around the configured values.
LEARNING_RATES = (0.003, 0.01, 0.03)
WIDTHS = (8, 16, 32, 64)
HUBER_SCALES = (0.25, 1.0, 4.0)


def search_space(config: TrainerConfig) -> keras_tuner.HyperParameters:
    """The learning rate; the layer width the model uses; the Huber threshold when the loss is Huber."""
    hp = keras_tuner.HyperParameters()
    hp.Choice("learning_rate", LEARNING_RATES)
    if config.model in ("mlp", "quadratic_mlp"):
        hp.Choice("hidden_units", WIDTHS)
    else:
        hp.Choice("units", WIDTHS)
    if config.loss in ("huber", "huber_fn"):
        hp.Choice("huber_threshold", [config.huber_threshold * s for s in HUBER_SCALES])
    return hp


def objective(config: TrainerConfig, labels: dict[str, str]) -> keras_tuner.Objective:
    """The main head's validation accuracy (classification) or RMSE (regression), as Keras logs it.

    Not the loss: the Huber threshold changes the loss's scale, so losses of two trials do not compare.
    """
    label, task = next(iter(labels.items()))
    prefix = {"wide_and_deep": "probabilities_", "multi_output": f"{safe_name(label)}_"}.get(config.model, "")
    if task == REGRESSION:
        return keras_tuner.Objective(f"val_{prefix}rmse", direction="min")
    return keras_tuner.Objective(f"val_{prefix}accuracy", direction="max")


class TfKerasTuner(base_tuner.BaseTuner):
    """Runs each trial by building a tf.keras model from the trial's values and fitting it."""

    def __init__(self, build: Callable[[keras_tuner.HyperParameters], tf.keras.Model], oracle, **kwargs):
        super().__init__(oracle, **kwargs)
        self.build = build

    def run_trial(self, trial, train_dataset, eval_dataset, epochs, steps_per_epoch, validation_steps):
        """The best epoch's value of every validation metric (the oracle reads the objective's)."""
        tf.keras.backend.clear_session()
        model = self.build(trial.hyperparameters)
        history = model.fit(
            with_label_per_output(train_dataset, model),
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            validation_data=with_label_per_output(eval_dataset, model),
            validation_steps=validation_steps,
            verbose=0,
        )
        name, direction = self.oracle.objective.name, self.oracle.objective.direction
        best = min if direction == "min" else max
        logging.info(
            "Trial %s %s: %s = %.4f",
            trial.trial_id,
            trial.hyperparameters.values,
            name,
            best(history.history[name]),
        )
        return {name: best(history.history[name])}


def tuner_fn(fn_args: FnArgs) -> TunerFnResult:
    config = TrainerConfig.from_dict(fn_args.custom_config["trainer"])
    labels = label_tasks(fn_args.custom_config)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    train_dataset, eval_dataset = datasets(fn_args, tf_transform_output, labels, config)

    def build(hp: keras_tuner.HyperParameters) -> tf.keras.Model:
        return build_model(tf_transform_output, train_dataset, config.with_hyperparameters(hp.values), labels)

    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=objective(config, labels),
        max_trials=int(fn_args.custom_config.get("tune_trials", 4)),
        hyperparameters=search_space(config),
        seed=int(fn_args.custom_config.get("tune_seed", 0)),
    )
    tuner = TfKerasTuner(build, oracle, directory=fn_args.working_dir, project_name="search")
    epochs, steps_per_epoch = config.epochs_for(fn_args.train_steps)
    return TunerFnResult(
        tuner=tuner,
        fit_kwargs=dict(
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            validation_steps=fn_args.eval_steps,
        ),
    )
