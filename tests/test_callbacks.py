"""Callbacks driven through their hooks with fake logs, or on a tiny model's training."""

from __future__ import annotations

import dataclasses

import pytest
import tensorflow as tf

from trainer_module.callbacks import (
    BatchTimingCallback,
    DetectOverfittingCallback,
    build_callbacks,
    step_decay,
)
from trainer_module.config import CALLBACKS, TrainerConfig


def attached(callback):
    model = tf.keras.Sequential([tf.keras.Input((1,)), tf.keras.layers.Dense(1)])
    callback.set_model(model)
    return callback, model


def test_detect_overfitting_stops_exactly_when_the_ratio_passes_the_threshold():
    callback, model = attached(DetectOverfittingCallback(threshold=1.5))
    callback.on_train_begin()
    callback.on_epoch_end(0, {"loss": 1.0, "val_loss": 1.5})  # ratio 1.5: not past it
    assert not model.stop_training and callback.stopped_epoch is None
    callback.on_epoch_end(1, {"loss": 1.0, "val_loss": 1.51})
    assert model.stop_training and callback.stopped_epoch == 1


def test_detect_overfitting_default_leaves_a_healthy_run_alone():
    callback, model = attached(DetectOverfittingCallback())
    callback.on_train_begin()
    for epoch, (loss, val_loss) in enumerate([(0.9, 0.95), (0.5, 0.55), (0.3, 0.36)]):
        callback.on_epoch_end(epoch, {"loss": loss, "val_loss": val_loss})
    assert not model.stop_training and callback.last_ratio == pytest.approx(1.2)


def test_detect_overfitting_resets_on_train_begin():
    callback, _ = attached(DetectOverfittingCallback(threshold=1.1))
    callback.on_epoch_end(0, {"loss": 1.0, "val_loss": 2.0})
    callback.on_train_begin()
    assert callback.stopped_epoch is None


def test_step_decay_halves_every_epoch_from_0_01():
    assert [step_decay(e) for e in range(4)] == pytest.approx([0.005, 0.0025, 0.00125, 0.000625])
    assert [step_decay(e, 0.1, 0.5, 2) for e in range(4)] == pytest.approx([0.1, 0.05, 0.05, 0.025])


def noise(seed: int = 0):
    """Random inputs and targets: nothing to learn, so validation loss stalls or grows while training
    loss falls."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(64, 3)).astype("float32"), rng.normal(size=(64, 1)).astype("float32")
    x_val, y_val = rng.normal(size=(32, 3)).astype("float32"), rng.normal(size=(32, 1)).astype("float32")
    return x, y, (x_val, y_val)


def small_model(learning_rate: float = 0.05) -> tf.keras.Model:
    model = tf.keras.Sequential(
        [tf.keras.Input((3,)), tf.keras.layers.Dense(16, "relu"), tf.keras.layers.Dense(1)]
    )
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate), loss="mse")
    return model


def test_batch_timing_logs_and_records_each_epochs_batches(caplog):
    import logging

    tf.keras.utils.set_random_seed(0)
    x, y, _ = noise()
    callback = BatchTimingCallback()
    with caplog.at_level(logging.INFO, logger="absl"):
        small_model().fit(x, y, batch_size=16, epochs=3, callbacks=[callback], verbose=0)
    epochs = callback.per_epoch()
    assert [epoch["batches"] for epoch in epochs] == [4, 4, 4]  # 64 examples in batches of 16
    assert all(0 < epoch["median_ms"] <= epoch["slowest_ms"] for epoch in epochs)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Batch timing")]
    assert lines == [
        f"Batch timing, epoch {n}: 4 batches, median {e['median_ms']:.3f} ms, "
        f"slowest {e['slowest_ms']:.3f} ms"
        for n, e in enumerate(epochs, start=1)
    ]


def test_every_configured_callback_is_built_in_order_with_its_settings(tmp_path):
    config = TrainerConfig(
        callbacks=CALLBACKS,
        learning_rate=0.02,
        early_stopping_patience=5,
        early_stopping_min_delta=0.05,
        early_stopping_baseline=0.8,
        reduce_lr_factor=0.3,
        reduce_lr_patience=2,
        reduce_lr_min_lr=0.0005,
        lr_decay_drop=0.25,
        lr_decay_epochs=2,
        overfitting_threshold=1.7,
    )
    callbacks = build_callbacks(config, str(tmp_path))
    kinds = [type(c).__name__ for c in callbacks]
    assert kinds == [
        "TensorBoard", "BestEpochCheckpoint", "EarlyStopping", "CSVLogger", "LearningRateScheduler",
        "ReduceLROnPlateau", "DetectOverfittingCallback", "BatchTimingCallback",
    ]  # fmt: skip
    board, checkpoint, early, csv_logger, schedule, plateau, overfitting, _ = callbacks
    assert board.log_dir == str(tmp_path)
    assert checkpoint.filepath == str(tmp_path / "checkpoints" / "best")
    assert (checkpoint.monitor, checkpoint.save_best_only, checkpoint.save_weights_only) == ("val_loss", 1, 1)
    assert (early.monitor, early.patience, early.baseline, early.restore_best_weights) == (
        "val_loss",
        5,
        0.8,
        1,
    )
    assert early.min_delta == pytest.approx(-0.05)  # Keras stores it negated for mode "min"
    assert csv_logger.filename == str(tmp_path / "training_log.csv")
    # The course's step decay: lr * drop ** floor((1 + epoch) / epochs_drop), so the first drop comes at
    # epoch 1 when epochs_drop is 2 (at epoch 0 when it is 1).
    assert [schedule.schedule(e) for e in range(4)] == pytest.approx([0.02, 0.005, 0.005, 0.00125])
    assert (plateau.monitor, plateau.factor, plateau.patience, plateau.min_lr) == ("val_loss", 0.3, 2, 0.0005)
    assert overfitting.threshold == 1.7


def early_stopped_after(config: TrainerConfig, val_losses: list[float]) -> int | None:
    """Drives the configured EarlyStopping through `val_losses` as `fit` does; the 1-based epoch after
    which it stopped training, or None."""
    [callback] = build_callbacks(config, "unused")
    callback, model = attached(callback)
    callback.on_train_begin()
    for epoch, val_loss in enumerate(val_losses):
        callback.on_epoch_end(epoch, {"val_loss": val_loss})
        if model.stop_training:
            return epoch + 1
    return None


def test_min_delta_and_baseline_change_when_early_stopping_stops():
    early = TrainerConfig(callbacks=("early_stopping",), early_stopping_patience=3)
    creeping = [1.0, 0.99, 0.98, 0.97, 0.96, 0.95, 0.94]  # improves by 0.01 an epoch
    assert early_stopped_after(early, creeping) is None
    # The course's min_delta: 0.01 an epoch is no improvement; three such epochs stop training.
    assert early_stopped_after(dataclasses.replace(early, early_stopping_min_delta=0.05), creeping) == 4
    # Better for three epochs, then worse: never below the course's baseline 0.8, so none of the three
    # counts as progress and the first worse epoch stops training; without a baseline (or with one the
    # run beats) patience starts over at each better epoch.
    falling = [1.0, 0.9, 0.85, 0.86, 0.87]
    assert early_stopped_after(early, falling) is None
    assert early_stopped_after(dataclasses.replace(early, early_stopping_baseline=0.8), falling) == 4
    assert early_stopped_after(dataclasses.replace(early, early_stopping_baseline=0.95), falling) is None


@pytest.mark.parametrize("loop", ["fit", "custom"])
def test_the_checkpoint_gives_the_model_its_best_validation_epoch(loop, tmp_path):
    import numpy as np

    from trainer_module.training_loop import train

    tf.keras.utils.set_random_seed(0)
    x, y, validation = noise()
    model = small_model(learning_rate=0.1)
    config = TrainerConfig(callbacks=("model_checkpoint",), loop=loop, steps_per_epoch=4, batch_size=16)
    callbacks = build_callbacks(config, str(tmp_path))
    batches = lambda data: tf.data.Dataset.from_tensor_slices(data).batch(16).repeat()  # noqa: E731
    watcher = _LastWeights()  # after the checkpoint: the weights each epoch ended with
    history, _ = train(
        model, batches((x, y)), batches(validation), config, 12, 4, 2, [*callbacks, watcher],
        tf.distribute.get_strategy(), None,
    )  # fmt: skip
    val_losses = history.history["val_loss"]
    best = int(np.argmin(val_losses))
    assert best < len(val_losses) - 1, val_losses  # the noise overfits: the last epoch is not the best
    assert callbacks[0].best_epoch == best + 1
    # The model holds the best epoch's weights, not the last epoch's.
    assert model.evaluate(*validation, verbose=0) == pytest.approx(val_losses[best], rel=1e-5)
    assert not all(np.array_equal(a, b) for a, b in zip(model.get_weights(), watcher.last, strict=True))


class _LastWeights(tf.keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.last = [w.copy() for w in self.model.get_weights()]


def test_unknown_callback_lists_the_choices():
    with pytest.raises(
        ValueError, match="unknown callback 'tensorbord'; valid choices: tensorboard, model_checkpoint"
    ):
        TrainerConfig(callbacks=("tensorbord",))


def test_early_stopping_stops_a_run_whose_validation_loss_stalls(tmp_path):
    import numpy as np

    tf.keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 3)).astype("float32"), rng.normal(size=(64, 1)).astype("float32")
    x_val, y_val = rng.normal(size=(32, 3)).astype("float32"), rng.normal(size=(32, 1)).astype("float32")
    model = tf.keras.Sequential(
        [tf.keras.Input((3,)), tf.keras.layers.Dense(16, "relu"), tf.keras.layers.Dense(1)]
    )
    model.compile(optimizer=tf.keras.optimizers.Adam(0.05), loss="mse")
    callbacks = build_callbacks(
        TrainerConfig(callbacks=("early_stopping",), early_stopping_patience=2), str(tmp_path)
    )
    history = model.fit(x, y, validation_data=(x_val, y_val), epochs=50, callbacks=callbacks, verbose=0)
    assert len(history.history["loss"]) < 50  # noise cannot be learned: validation stalls, training stops
    assert callbacks[0].stopped_epoch == len(history.history["loss"]) - 1
