"""Trainer hyperparameters: one dataclass, sent through `Trainer(custom_config=...)` and rebuilt in run_fn."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

MODELS = ("mlp", "quadratic_mlp", "wide_and_deep", "multi_output", "resnet", "vgg", "siamese")
LOSSES = ("auto", "sparse_categorical_crossentropy", "mse", "huber", "huber_fn", "rmse", "contrastive")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
LOOPS = ("fit", "custom")
# Losses that give one value per batch (a root of the batch's mean, a margin over the batch's pairs), not
# one per example: the custom loop averages per-example losses over the global batch, and replicas would
# each take the root of their own share; so neither the custom loop nor several replicas train them right.
PER_BATCH_LOSSES = ("rmse", "contrastive")
REPLICATED_STRATEGIES = ("mirrored", "multi_worker")
STRATEGIES = ("default", "one_device", "mirrored", "multi_worker")
CALLBACKS = (
    "tensorboard",
    "model_checkpoint",
    "early_stopping",
    "csv_logger",
    "lr_step_decay",
    "reduce_lr_on_plateau",
    "detect_overfitting",
    "batch_timing",
)

# The settings that take one of a list of names (a list of them, for callbacks).
CHOICES = {
    "model": MODELS,
    "loss": LOSSES,
    "optimizer": OPTIMIZERS,
    "loop": LOOPS,
    "strategy": STRATEGIES,
    "callbacks": CALLBACKS,
}


def _choice(name: str, value, choices) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; valid choices: {', '.join(choices)}")


@dataclass(frozen=True)
class TrainerConfig:
    """How the Trainer builds and fits the model.

    The pipeline's step budget (`train_steps`) is split into epochs of `steps_per_epoch` steps, with a
    validation pass after each, so that the callbacks act and the TensorBoard curves have points.
    """

    model: str = "mlp"  # the catalogue model to train
    hidden_units: tuple[int, ...] = (16, 16)  # widths of the hidden layers (mlp, quadratic_mlp)
    units: int = 30  # wide_and_deep's deep layers, multi_output's trunk, siamese's base
    filters: int = 32  # resnet
    batch_norm_momentum: float = 0.99  # resnet's moving statistics; short trainings want about 0.9
    vgg_blocks: tuple[tuple[int, int, int], ...] = ((32, 3, 2), (64, 3, 2))  # vgg: (filters, kernel, repeats)
    dropout: float = 0.1  # the share of units dropped in training

    loss: str = "auto"  # auto: crossentropy for classes, mean squared error for regression
    huber_threshold: float = 1.0  # the Huber loss: quadratic below it, linear above
    contrastive_margin: float = 1.0  # the contrastive loss's margin

    optimizer: str = "adam"  # the Keras optimizer
    learning_rate: float = 0.01  # the optimizer's learning rate
    batch_size: int = 32  # training examples per step (per replica)
    eval_batch_size: int = 32  # examples per validation batch
    steps_per_epoch: int = 50  # steps between validations and callbacks

    callbacks: tuple[str, ...] = ("tensorboard", "early_stopping")  # the Keras callbacks
    # EarlyStopping on val_loss: stops after `patience` epochs without an improvement of at least
    # `min_delta`, or (with a `baseline`) when val_loss has not come below the baseline within `patience`
    # epochs; the best epoch's weights are restored. The course uses min_delta 0.05, baseline 0.8.
    early_stopping_patience: int = 3
    early_stopping_min_delta: float = 0.0  # the smallest val_loss improvement that counts
    early_stopping_baseline: float | None = None  # a val_loss to reach within patience (none)
    lr_decay_drop: float = 0.5  # lr_step_decay: the factor at each step
    lr_decay_epochs: int = 1  # lr_step_decay: epochs between steps
    reduce_lr_factor: float = 0.2  # reduce_lr_on_plateau: the factor
    reduce_lr_patience: int = 1  # reduce_lr_on_plateau: epochs without improvement
    reduce_lr_min_lr: float = 0.001  # reduce_lr_on_plateau: the lowest rate
    overfitting_threshold: float = 2.0  # detect_overfitting: the val_loss/loss ratio that stops
    # Start from the weights of the last blessed (or, on Kubeflow, the served) model, layer by layer where
    # names and shapes match: retraining on a new span continues from what the model knew.
    warm_start: bool = False

    # `fit`, or the custom GradientTape loop (trainer_module/training_loop.py); either under a strategy.
    # `batch_size` is per replica: the global batch is batch_size x replicas.
    loop: str = "fit"
    strategy: str = "default"  # the tf.distribute strategy
    jit_compile: bool = False  # XLA-compile the custom loop's step
    # Resume: a Trainer stopped mid-training and run again continues from its last epoch checkpoint.
    resume: bool = True

    def __post_init__(self):
        for name, choices in CHOICES.items():
            for value in getattr(self, name) if name == "callbacks" else (getattr(self, name),):
                _choice(name.removesuffix("s") if name == "callbacks" else name, value, choices)
        if self.loss in PER_BATCH_LOSSES and self.loop == "custom":
            raise ValueError(
                f"loss {self.loss!r} gives one value per batch, not per example, and the custom loop "
                "averages per-example losses over the global batch: train it with loop 'fit', or choose "
                "another loss"
            )
        if self.loss in PER_BATCH_LOSSES and self.strategy in REPLICATED_STRATEGIES:
            raise ValueError(
                f"loss {self.loss!r} gives one value per batch: under strategy {self.strategy!r} each "
                "replica would take it over its own share of the batch, and a step would differ from one "
                "device's; use strategy 'default' or 'one_device', or another loss"
            )
        if not self.hidden_units or any(u <= 0 for u in self.hidden_units):
            raise ValueError(f"hidden_units must be positive integers, got {self.hidden_units!r}")
        for name in (
            "units",
            "filters",
            "batch_size",
            "eval_batch_size",
            "steps_per_epoch",
            "lr_decay_epochs",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        for name in ("learning_rate", "huber_threshold", "contrastive_margin", "overfitting_threshold"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if not 0 < self.batch_norm_momentum < 1:
            raise ValueError(f"batch_norm_momentum must be within (0, 1), got {self.batch_norm_momentum!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be within [0, 1), got {self.dropout!r}")
        if not 0 < self.lr_decay_drop <= 1 or not 0 < self.reduce_lr_factor < 1:
            raise ValueError(
                f"lr_decay_drop must be within (0, 1] and reduce_lr_factor within (0, 1), got "
                f"{self.lr_decay_drop!r} and {self.reduce_lr_factor!r}"
            )
        if not self.early_stopping_min_delta >= 0:
            raise ValueError(f"early_stopping_min_delta must be >= 0, got {self.early_stopping_min_delta!r}")
        if self.early_stopping_patience < 0 or self.reduce_lr_patience < 0:
            raise ValueError(
                f"patience must be >= 0, got {self.early_stopping_patience!r} and {self.reduce_lr_patience!r}"
            )
        if any(len(b) != 3 or min(b) <= 0 for b in self.vgg_blocks) or not self.vgg_blocks:
            raise ValueError(
                f"vgg_blocks must be (filters, kernel_size, repetitions) triples, got {self.vgg_blocks!r}"
            )

    def epochs_for(self, train_steps: int) -> tuple[int, int]:
        """Splits a step budget into (epochs, steps per epoch), rounding up to whole epochs."""
        if train_steps <= 0:
            raise ValueError(f"train_steps must be positive, got {train_steps!r}")
        epochs = math.ceil(train_steps / self.steps_per_epoch)
        return epochs, math.ceil(train_steps / epochs)

    def with_hyperparameters(self, values: dict) -> TrainerConfig:
        """This configuration with tuned values: `hidden_units` (one width for every hidden layer),
        `units`, `learning_rate`, `huber_threshold`."""
        changes = dict(values)
        if "hidden_units" in changes:
            changes["hidden_units"] = (int(changes["hidden_units"]),) * len(self.hidden_units)
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(
                f"unknown hyperparameters {sorted(unknown)}; they must name TrainerConfig fields"
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainerConfig:
        values = dict(values)
        for name in ("hidden_units", "callbacks"):
            if name in values:
                values[name] = tuple(values[name])
        if "vgg_blocks" in values:
            values["vgg_blocks"] = tuple(tuple(b) for b in values["vgg_blocks"])
        return cls(**values)
