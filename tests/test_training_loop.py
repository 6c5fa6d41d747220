"""The custom GradientTape step against Keras' own `fit` step, and the course's toy fit."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from trainer_module.training_loop import compute_gradients, train_step


def make_model(seed=0):
    tf.keras.utils.set_random_seed(seed)
    return tf.keras.Sequential(
        [tf.keras.Input((3,)), tf.keras.layers.Dense(4, activation="relu"), tf.keras.layers.Dense(1)]
    )


def test_custom_step_applies_the_same_gradients_as_fit():
    x = np.random.default_rng(0).normal(size=(8, 3)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    reference, custom = make_model(), make_model()
    custom.set_weights(reference.get_weights())

    reference.compile(optimizer=tf.keras.optimizers.SGD(0.1), loss="mse")
    reference.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    train_step(custom, tf.keras.optimizers.SGD(0.1), tf.keras.losses.MeanSquaredError(), x, y)

    for after_fit, after_custom in zip(reference.get_weights(), custom.get_weights(), strict=True):
        np.testing.assert_allclose(after_fit, after_custom, rtol=1e-5, atol=1e-6)


def test_gradients_match_a_hand_derivation():
    model = tf.keras.Sequential([tf.keras.Input((1,)), tf.keras.layers.Dense(1)])
    model.set_weights([np.array([[2.0]]), np.array([1.0])])
    x, y = tf.constant([[1.0], [2.0]]), tf.constant([[5.0], [8.0]])
    loss, (dw, db) = compute_gradients(model, tf.keras.losses.MeanSquaredError(), x, y)
    # predictions 3, 5; errors -2, -3; loss (4 + 9) / 2; dL/dw = mean(2 e x) = -8; dL/db = mean(2 e) = -5
    assert float(loss) == 6.5
    assert float(dw[0, 0]) == -8.0 and float(db[0]) == -5.0


class Held(tf.keras.layers.Layer):
    """A layer whose output is its one weight, `value`: the loop's gradients are then d loss / d value."""

    def __init__(self, value):
        super().__init__()
        self.value = tf.Variable(value, dtype=tf.float32)

    def call(self, inputs):
        return self.value


def gradient_through_the_loop(value, loss_fn):
    """What the custom loop's step (`compute_gradients`: its GradientTape) gives for `loss_fn(value)`."""
    model = tf.keras.Sequential([tf.keras.Input((1,)), Held(value)])
    loss, (gradient,) = compute_gradients(model, lambda _, p: loss_fn(p), tf.zeros((1, 1)), tf.zeros((1, 1)))
    return loss, gradient


def test_the_loops_tape_gives_the_courses_exact_gradients():
    # y = 3x^3 - 2x^2 + x at x = 2: dy/dx = 9x^2 - 4x + 1 = 29.
    loss, gradient = gradient_through_the_loop(2.0, lambda x: 3 * x**3 - 2 * x**2 + x)
    assert float(loss) == 18.0 and float(gradient) == 29.0
    # z = (sum of x)^2 on ones(2, 2): dz/dx = 2 * sum = 8 everywhere.
    loss, gradient = gradient_through_the_loop(tf.ones((2, 2)), lambda x: tf.reduce_sum(x) ** 2)
    assert float(loss) == 16.0 and gradient.numpy().tolist() == [[8.0, 8.0], [8.0, 8.0]]


def test_a_persistent_tape_answers_twice_the_loops_tape_once():
    x = tf.constant(3.0)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = x * x
        z = y * y
    assert float(tape.gradient(z, x)) == 108.0  # 4x^3
    assert float(tape.gradient(y, x)) == 6.0  # 2x
    del tape
    # The loop's step records one tape per batch and asks it once; a second question is an error.
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = x * x
        z = y * y
    assert float(tape.gradient(z, x)) == 108.0
    with pytest.raises(RuntimeError, match="non-persistent"):
        tape.gradient(y, x)


def test_fitting_a_line_from_w2_b1_drives_the_mse_below_0_01_in_15_epochs():
    x = tf.constant(np.linspace(-1, 1, 20, dtype="float32").reshape(-1, 1))
    y = 3 * x + 2
    model = tf.keras.Sequential([tf.keras.Input((1,)), tf.keras.layers.Dense(1)])
    model.set_weights([np.array([[2.0]]), np.array([1.0])])
    optimizer, mse = tf.keras.optimizers.SGD(0.1), tf.keras.losses.MeanSquaredError()
    initial = float(mse(y, model(x)))
    for _ in range(15):
        for i in range(0, 20, 4):  # mini-batches of 4
            train_step(model, optimizer, mse, x[i : i + 4], y[i : i + 4])
    assert 1.0 < initial < 3.0
    assert float(mse(y, model(x))) < 0.01


def test_checkpoints_are_keyed_by_the_trainers_inputs_not_its_run(tmp_path):
    from tfx.components.trainer.fn_args_utils import FnArgs

    from trainer_module.run import checkpoint_directory

    def args(run: int, **changes):
        values = dict(
            train_files=["/p/Transform/transformed_examples/7/Split-train/*"],
            eval_files=["/p/Transform/transformed_examples/7/Split-eval/*"],
            transform_graph_path="/p/Transform/transform_graph/7",
            custom_config={"trainer": {"loop": "custom"}},
            train_steps=300,
            eval_steps=4,
            model_run_dir=f"/p/Trainer/model_run/{run}",
        )
        return FnArgs(**{**values, **changes})

    first = checkpoint_directory(args(12))
    assert first.startswith("/p/Trainer/checkpoints/")
    assert checkpoint_directory(args(13)) == first  # a re-execution finds the same checkpoints
    assert checkpoint_directory(args(13, train_steps=200)) != first
    assert checkpoint_directory(args(13, custom_config={"trainer": {"loop": "fit"}})) != first


def test_on_a_cluster_checkpoints_live_outside_the_run_so_a_retried_trainer_resumes():
    """KFP writes each execution under `<root>/<pipeline>/<run id>/<task>/<uuid>/`: the configured checkpoint
    root, not the run directory, holds the checkpoints, so a retry (new uuid) finds them."""
    from tfx.components.trainer.fn_args_utils import FnArgs

    from trainer_module.run import checkpoint_directory

    def retry(salt: str):
        return FnArgs(
            train_files=["gs://b/root/p/run-1/Transform/u1/transformed_examples/Split-train/*"],
            eval_files=["gs://b/root/p/run-1/Transform/u1/transformed_examples/Split-eval/*"],
            transform_graph_path="gs://b/root/p/run-1/Transform/u1/transform_graph",
            custom_config={"trainer": {"loop": "fit"}, "checkpoint_root": "gs://b/root/Trainer/checkpoints"},
            train_steps=300,
            eval_steps=4,
            model_run_dir=f"gs://b/root/p/run-1/Trainer/{salt}/model_run",
        )

    first = checkpoint_directory(retry("u2"))
    assert first.startswith("gs://b/root/Trainer/checkpoints/")
    assert checkpoint_directory(retry("u3")) == first


def test_per_example_loss_is_averaged_over_the_global_batch():
    from trainer_module.training_loop import per_example_loss_fn

    model = tf.keras.Sequential([tf.keras.layers.Dense(1, input_shape=(1,))])
    model.compile(loss="mse")
    loss_fn = per_example_loss_fn(model)
    values = loss_fn(tf.constant([[1.0], [3.0]]), tf.constant([[0.0], [0.0]]))
    assert values.numpy().tolist() == [1.0, 9.0]  # one value per example, not reduced
    # Two replicas each holding one example of a global batch of 2: their shares add up to the mean.
    shares = [tf.nn.compute_average_loss(values[i : i + 1], global_batch_size=2) for i in range(2)]
    assert float(tf.add_n(shares)) == 5.0
