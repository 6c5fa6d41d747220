"""A custom training step: GradientTape -> gradients -> `optimizer.apply_gradients`."""

from __future__ import annotations

import tensorflow as tf


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
