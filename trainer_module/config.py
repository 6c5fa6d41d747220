"""Trainer hyperparameters: one dataclass, sent through `Trainer(custom_config=...)` and rebuilt in run_fn."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class TrainerConfig:
    """How the Trainer builds and fits the model.

    The pipeline's step budget (`train_steps`) is split into epochs of `steps_per_epoch` steps, with a
    validation pass after each, so that EarlyStopping and the TensorBoard curves have points to act on.
    """

    hidden_units: tuple[int, ...] = (16, 16)
    learning_rate: float = 0.01
    batch_size: int = 32
    eval_batch_size: int = 32
    steps_per_epoch: int = 50
    early_stopping_patience: int = 3

    def __post_init__(self):
        if not self.hidden_units or any(u <= 0 for u in self.hidden_units):
            raise ValueError(f"hidden_units must be positive integers, got {self.hidden_units!r}")
        for name in ("batch_size", "eval_batch_size", "steps_per_epoch"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate!r}")
        if self.early_stopping_patience < 0:
            raise ValueError(f"early_stopping_patience must be >= 0, got {self.early_stopping_patience!r}")

    def epochs_for(self, train_steps: int) -> tuple[int, int]:
        """Splits a step budget into (epochs, steps per epoch), rounding up to whole epochs."""
        if train_steps <= 0:
            raise ValueError(f"train_steps must be positive, got {train_steps!r}")
        epochs = math.ceil(train_steps / self.steps_per_epoch)
        return epochs, math.ceil(train_steps / epochs)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainerConfig:
        values = dict(values)
        values["hidden_units"] = tuple(values.get("hidden_units", cls.hidden_units))
        return cls(**values)
