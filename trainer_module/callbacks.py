"""Keras callbacks: the built-in set assembled from configuration, and the project's own."""

from __future__ import annotations

import math
import os
import statistics
import time

import tensorflow as tf
from absl import logging

from trainer_module.config import TrainerConfig


def step_decay(epoch: int, initial_lr: float = 0.01, drop: float = 0.5, epochs_drop: int = 1) -> float:
    """lr = initial_lr * drop ** floor((1 + epoch) / epochs_drop): 0.005, 0.0025, ... with the defaults."""
    return initial_lr * drop ** math.floor((1 + epoch) / epochs_drop)


class DetectOverfittingCallback(tf.keras.callbacks.Callback):
    """Stops training, and says so, once val_loss / loss exceeds `threshold` at the end of an epoch.

    The default 2.0 leaves a healthy run alone (its ratio stays near 1) and stops one whose validation loss
    has grown to twice the training loss.
    """

    def __init__(self, threshold: float = 2.0):
        super().__init__()
        if not threshold > 0:
            raise ValueError(f"threshold must be positive, got {threshold!r}")
        self.threshold = float(threshold)
        self.stopped_epoch = None
        self.last_ratio = None

    def on_train_begin(self, logs=None):
        self.stopped_epoch = None
        self.last_ratio = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if "val_loss" not in logs or not logs.get("loss"):
            return
        self.last_ratio = logs["val_loss"] / logs["loss"]
        if self.last_ratio > self.threshold:
            logging.info(
                "DetectOverfitting: stopping after epoch %d: val_loss / loss = %.3f > %.3f",
                epoch + 1,
                self.last_ratio,
                self.threshold,
            )
            self.stopped_epoch = epoch
            self.model.stop_training = True


class BatchTimingCallback(tf.keras.callbacks.Callback):
    """Times every training batch and writes each epoch's median and slowest batch to the training log."""

    def __init__(self):
        super().__init__()
        self.epoch_times: list[list[float]] = []
        self._start = None

    def on_train_begin(self, logs=None):
        self.epoch_times = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_times.append([])

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self._start is not None:
            if not self.epoch_times:
                self.epoch_times.append([])
            self.epoch_times[-1].append(time.perf_counter() - self._start)

    @staticmethod
    def _summary(times: list[float]) -> dict:
        return {
            "batches": len(times),
            "median_ms": round(1000 * statistics.median(times), 3),
            "slowest_ms": round(1000 * max(times), 3),
        }

    def per_epoch(self) -> list[dict]:
        """Each epoch's batches, median and slowest batch time (milliseconds): what training.json records
        and the log shows."""
        return [self._summary(times) for times in self.epoch_times if times]

    def on_epoch_end(self, epoch, logs=None):
        times = self.epoch_times[-1] if self.epoch_times else []
        if times:
            summary = self._summary(times)
            logging.info(
                "Batch timing, epoch %d: %d batches, median %.3f ms, slowest %.3f ms",
                epoch + 1,
                summary["batches"],
                summary["median_ms"],
                summary["slowest_ms"],
            )


class BestEpochCheckpoint(tf.keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint keeping the weights of the epoch with the lowest val_loss; when training ends the
    model takes them back, so the exported model is that epoch's, not the last one's (`best_epoch`, 1-based,
    goes into training.json)."""

    def __init__(self, filepath: str):
        super().__init__(
            filepath, monitor="val_loss", mode="min", save_best_only=True, save_weights_only=True
        )
        self.best_epoch = None

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.best_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        before = self.best
        super().on_epoch_end(epoch, logs)
        if self.best != before:
            self.best_epoch = epoch + 1

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        if self.best_epoch is not None:
            self.model.load_weights(self.filepath)
            logging.info(
                "ModelCheckpoint: the model keeps epoch %d's weights (val_loss %.4f)",
                self.best_epoch,
                self.best,
            )


def build_callbacks(config: TrainerConfig, run_dir: str) -> list[tf.keras.callbacks.Callback]:
    """The callbacks named in `config.callbacks`, in that order; files go under `run_dir`."""
    factories = {
        "tensorboard": lambda: tf.keras.callbacks.TensorBoard(log_dir=run_dir, update_freq="epoch"),
        "model_checkpoint": lambda: BestEpochCheckpoint(os.path.join(run_dir, "checkpoints", "best")),
        "early_stopping": lambda: tf.keras.callbacks.EarlyStopping(
            monitor="val_loss",
            mode="min",
            patience=config.early_stopping_patience,
            min_delta=config.early_stopping_min_delta,
            baseline=config.early_stopping_baseline,
            restore_best_weights=True,
        ),
        "csv_logger": lambda: tf.keras.callbacks.CSVLogger(os.path.join(run_dir, "training_log.csv")),
        "lr_step_decay": lambda: tf.keras.callbacks.LearningRateScheduler(
            lambda epoch: step_decay(
                epoch, config.learning_rate, config.lr_decay_drop, config.lr_decay_epochs
            )
        ),
        "reduce_lr_on_plateau": lambda: tf.keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss",
            factor=config.reduce_lr_factor,
            patience=config.reduce_lr_patience,
            min_lr=config.reduce_lr_min_lr,
        ),
        "detect_overfitting": lambda: DetectOverfittingCallback(config.overfitting_threshold),
        "batch_timing": BatchTimingCallback,
    }
    return [factories[name]() for name in config.callbacks]
