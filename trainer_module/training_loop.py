"""A custom training step: GradientTape -> gradients -> `optimizer.apply_gradients`."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from absl import logging


def compute_gradients(model: tf.keras.Model, loss_fn, x, y, training: bool = True):
    """(loss, gradients of the loss with respect to the trainable weights) on one batch."""
    with tf.GradientTape() as tape:
        predictions = model(x, training=training)
        loss = loss_fn(y, predictions)
        if model.losses:
            loss += tf.add_n(model.losses)
    return loss, tape.gradient(loss, model.trainable_weights)


def train_step(model: tf.keras.Model, optimizer, loss_fn, x, y):
    """One optimisation step; returns the batch loss before the update."""
    loss, gradients = compute_gradients(model, loss_fn, x, y)
    optimizer.apply_gradients(zip(gradients, model.trainable_weights, strict=True))
    return loss


def unreduced(loss):
    """The same loss returning one value per example, for `tf.nn.compute_average_loss`. `loss` is what
    compile() was given: a Loss, a loss function or its name."""
    if not isinstance(loss, tf.keras.losses.Loss):
        loss = tf.keras.losses.get(loss)
        if not isinstance(loss, tf.keras.losses.Loss):
            return loss  # a loss function: already one value per example
    return loss.__class__.from_config({**loss.get_config(), "reduction": tf.keras.losses.Reduction.NONE})


def _per_example(values: tf.Tensor) -> tf.Tensor:
    """[batch] from a loss returning [batch] or elementwise [batch, ...] values."""
    return tf.reduce_mean(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)


def per_example_loss_fn(model: tf.keras.Model):
    """(labels, predictions) -> the model's compiled loss per example, outputs weighted as compiled."""
    if isinstance(model.loss, dict):
        losses = {name: unreduced(loss) for name, loss in model.loss.items()}
        # What compile() was given; tf.keras keeps no public accessor.
        weights = model.compiled_loss._user_loss_weights or {}  # noqa: SLF001

        def loss_fn(labels, predictions):
            return tf.add_n(
                [
                    weights.get(name, 1.0) * _per_example(fn(labels[name], predictions[name]))
                    for name, fn in losses.items()
                ]
            )

        return loss_fn
    loss = unreduced(model.loss)
    return lambda labels, predictions: _per_example(loss(labels, predictions))


class EpochCheckpoint(tf.keras.callbacks.Callback):
    """Saves model and optimizer at the end of every epoch, numbered by the optimizer's step."""

    def __init__(self, manager: tf.train.CheckpointManager):
        super().__init__()
        self.manager = manager

    def on_epoch_end(self, epoch, logs=None):
        self.manager.save(checkpoint_number=int(self.model.optimizer.iterations.numpy()))


# Epoch checkpoints kept: on a cluster restarted after a failure one worker may hold one epoch more than
# another, so every worker keeps the one before too.
KEPT_CHECKPOINTS = 2


def checkpoint_manager(model: tf.keras.Model, directory: str) -> tf.train.CheckpointManager:
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    return tf.train.CheckpointManager(checkpoint, directory, max_to_keep=KEPT_CHECKPOINTS)


def held_steps(manager: tf.train.CheckpointManager) -> list[int]:
    """The optimizer steps of the checkpoints in the manager's directory, oldest first."""
    return [int(path.rsplit("-", 1)[1]) for path in manager.checkpoints]


def newest_common(held: list[list[int]]) -> int:
    """The newest checkpoint step every worker holds, from each worker's held steps (-1: a free slot);
    0 when they share none."""
    shared = set.intersection(*(set(steps) - {-1} for steps in held))
    return max(shared, default=0)


def common_step(strategy: tf.distribute.Strategy, steps: list[int]) -> int:
    """The latest of `steps` that every worker of the cluster holds too (0: none). Each worker of a
    multi-worker strategy keeps its own checkpoints (no shared file system needed), saved at the same
    epochs; a worker stopped between its epoch's save and another's holds one checkpoint less, so the
    workers agree (an all-gather of what each holds) on the newest they all have."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return max(steps, default=0)
    padded = tf.constant((steps[-KEPT_CHECKPOINTS:] + [-1] * KEPT_CHECKPOINTS)[:KEPT_CHECKPOINTS], tf.int64)
    per_replica = strategy.experimental_distribute_values_from_function(lambda _: padded)
    held = strategy.gather(per_replica, axis=0).numpy().reshape(-1, KEPT_CHECKPOINTS).tolist()
    logging.info("Checkpoint steps held by each replica: %s", held)
    return newest_common(held)


def restore(manager: tf.train.CheckpointManager, strategy: tf.distribute.Strategy | None = None) -> int:
    """Restores the latest checkpoint (on a cluster: the latest every worker holds) if there is one;
    returns the step it was taken at (0: none)."""
    held = held_steps(manager)
    step = common_step(strategy, held) if strategy is not None else max(held, default=0)
    if not step:
        return 0
    manager.checkpoint.restore(manager.checkpoints[held.index(step)])
    return step


def fit_custom(
    model: tf.keras.Model,
    train_dataset: tf.data.Dataset,
    eval_dataset: tf.data.Dataset,
    epochs: int,
    steps_per_epoch: int,
    validation_steps: int,
    callbacks: list,
    strategy: tf.distribute.Strategy,
    global_batch_size: int,
    initial_epoch: int = 0,
    jit_compile: bool = False,
) -> tf.keras.callbacks.History:
    """`model.fit` written out: per-replica GradientTape steps under `strategy`, the unreduced loss averaged
    over the global batch (`tf.nn.compute_average_loss`), `strategy.reduce` of the replicas' losses,
    metrics reset each epoch, a validation pass after each, the Keras callbacks called as `fit` calls them
    (TensorBoard, EarlyStopping, DetectOverfitting... `model.stop_training` ends the loop).

    Build and compile `model` under `strategy.scope()`; the datasets yield global batches.
    """
    loss_fn = per_example_loss_fn(model)
    optimizer = model.optimizer
    with strategy.scope():
        loss_tracker = tf.keras.metrics.Mean(name="loss")
    train_iterator = iter(strategy.experimental_distribute_dataset(train_dataset))
    eval_iterator = iter(strategy.experimental_distribute_dataset(eval_dataset))

    def replica_train_step(features, labels):
        with tf.GradientTape() as tape:
            predictions = model(features, training=True)
            per_example = loss_fn(labels, predictions)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        # Metrics are updated per replica; their variables sum over the replicas when read.
        loss_tracker.update_state(per_example)
        model.compiled_metrics.update_state(labels, predictions)
        return loss

    def replica_eval_step(features, labels):
        predictions = model(features, training=False)
        per_example = loss_fn(labels, predictions)
        loss_tracker.update_state(per_example)
        model.compiled_metrics.update_state(labels, predictions)
        return tf.nn.compute_average_loss(per_example, global_batch_size=global_batch_size)

    # Keras' own structure: one graph per step that pulls the next batch, runs every replica and reduces
    # the replicas' losses, so that Python does nothing per step but call it.
    replica_train = (
        tf.function(replica_train_step, jit_compile=jit_compile) if jit_compile else replica_train_step
    )

    @tf.function
    def train_step(iterator):
        features, labels = next(iterator)
        # The replicas' shares of the global batch's mean loss add up to it.
        return strategy.reduce(
            tf.distribute.ReduceOp.SUM, strategy.run(replica_train, args=(features, labels)), axis=None
        )

    @tf.function
    def eval_step(iterator):
        features, labels = next(iterator)
        return strategy.reduce(
            tf.distribute.ReduceOp.SUM, strategy.run(replica_eval_step, args=(features, labels)), axis=None
        )

    def run_epoch(step_fn, iterator, steps, batch_callbacks=None) -> dict[str, float]:
        loss_tracker.reset_state()
        model.compiled_metrics.reset_state()
        for step in range(steps):
            if batch_callbacks:
                batch_callbacks.on_train_batch_begin(step)
            step_fn(iterator)
            if batch_callbacks:
                model._train_counter.assign_add(1)  # noqa: SLF001 - the step TensorBoard reads
                batch_callbacks.on_train_batch_end(step)
        logs = {"loss": float(loss_tracker.result())}
        if not np.isfinite(logs["loss"]):
            raise FloatingPointError(f"the loss became {logs['loss']}; lower the learning rate")
        logs.update({m.name: float(m.result()) for m in model.compiled_metrics.metrics})
        return logs

    callback_list = tf.keras.callbacks.CallbackList(
        callbacks, add_history=True, model=model, epochs=epochs, steps=steps_per_epoch, verbose=0
    )
    model.stop_training = False
    callback_list.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        logs = run_epoch(train_step, train_iterator, steps_per_epoch, callback_list)
        validation = run_epoch(eval_step, eval_iterator, validation_steps)
        logs.update({f"val_{name}": value for name, value in validation.items()})
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end()
    return model.history


def train(
    model: tf.keras.Model,
    train_dataset: tf.data.Dataset,
    eval_dataset: tf.data.Dataset,
    config,
    epochs: int,
    steps_per_epoch: int,
    validation_steps: int,
    callbacks: list,
    strategy: tf.distribute.Strategy,
    checkpoint_dir: str | None = None,
) -> tuple[tf.keras.callbacks.History, int]:
    """Trains with `fit` or the custom loop (`config.loop`); returns (history, the step it resumed from).

    With `checkpoint_dir`, model and optimizer are saved there after every epoch and a run finding a
    checkpoint continues from it: `optimizer.iterations` carries on from the saved step and only the
    remaining epochs run, so the total number of steps is the budget. Under `multi_worker` each worker
    passes its own directory and the workers resume from the newest step they all hold (`common_step`).
    """
    initial_epoch, resumed_step = 0, 0
    if checkpoint_dir:
        manager = checkpoint_manager(model, checkpoint_dir)
        resumed_step = restore(manager, strategy)
        if resumed_step:
            initial_epoch = min(resumed_step // steps_per_epoch, epochs)
            logging.info(
                "Resuming from checkpoint %s: step %d, epoch %d of %d",
                manager.checkpoints[held_steps(manager).index(resumed_step)],
                resumed_step,
                initial_epoch + 1,
                epochs,
            )
        callbacks = [*callbacks, EpochCheckpoint(manager)]
    if config.loop == "custom":
        history = fit_custom(
            model,
            train_dataset,
            eval_dataset,
            epochs,
            steps_per_epoch,
            validation_steps,
            callbacks,
            strategy,
            global_batch_size=config.batch_size * strategy.num_replicas_in_sync,
            initial_epoch=initial_epoch,
            jit_compile=config.jit_compile,
        )
    else:
        history = model.fit(
            train_dataset,
            epochs=epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=steps_per_epoch,
            validation_data=eval_dataset,
            validation_steps=validation_steps,
            callbacks=callbacks,
            verbose=2,
        )
    return history, resumed_step
