"""Callbacks driven through their hooks with fake logs, no training run."""

from __future__ import annotations

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


def test_batch_timing_records_every_batch_per_epoch():
    callback = BatchTimingCallback()
    callback.on_train_begin()
    for epoch, batches in enumerate([3, 2]):
        callback.on_epoch_begin(epoch)
        for batch in range(batches):
            callback.on_train_batch_begin(batch)
            callback.on_train_batch_end(batch)
        callback.on_epoch_end(epoch)
    assert [len(times) for times in callback.epoch_times] == [3, 2]
    assert all(t >= 0 for times in callback.epoch_times for t in times)


def test_every_configured_callback_is_built_in_order(tmp_path):
    config = TrainerConfig(callbacks=CALLBACKS, learning_rate=0.02, early_stopping_patience=5)
    callbacks = build_callbacks(config, str(tmp_path))
    kinds = [type(c).__name__ for c in callbacks]
    assert kinds == [
        "TensorBoard", "ModelCheckpoint", "EarlyStopping", "CSVLogger", "LearningRateScheduler",
        "ReduceLROnPlateau", "DetectOverfittingCallback", "BatchTimingCallback",
    ]  # fmt: skip
    assert callbacks[0].log_dir == str(tmp_path)
    assert callbacks[2].patience == 5 and callbacks[2].restore_best_weights
    assert callbacks[4].schedule(0) == pytest.approx(0.01)  # starts from the configured learning rate


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
