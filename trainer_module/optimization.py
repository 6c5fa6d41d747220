"""Losses and optimizers by configured name."""

from __future__ import annotations

import tensorflow as tf

from trainer_module import losses
from trainer_module.config import TrainerConfig


def build_loss(config: TrainerConfig, task: str):
    """The loss named in `config.loss`; `auto` picks crossentropy for classification, MSE for regression."""
    name = config.loss
    if name == "auto":
        name = "sparse_categorical_crossentropy" if task == "classification" else "mse"
    factories = {
        "sparse_categorical_crossentropy": tf.keras.losses.SparseCategoricalCrossentropy,
        "mse": tf.keras.losses.MeanSquaredError,
        "huber": lambda: losses.Huber(threshold=config.huber_threshold),
        "huber_fn": lambda: losses.my_huber_loss(config.huber_threshold),
        "rmse": losses.RootMeanSquaredError,
        "contrastive": lambda: losses.ContrastiveLoss(margin=config.contrastive_margin),
    }
    return factories[name]()


def build_optimizer(config: TrainerConfig) -> tf.keras.optimizers.Optimizer:
    optimizers = {
        "adam": tf.keras.optimizers.Adam,
        "sgd": tf.keras.optimizers.SGD,
        "rmsprop": tf.keras.optimizers.RMSprop,
    }
    return optimizers[config.optimizer](learning_rate=config.learning_rate)
