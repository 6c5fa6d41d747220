"""Trains the project's classifier on the penguins table outside TFX, in its own process, and prints a JSON
line: eval accuracy, replicas in sync, optimizer steps, the step training resumed from.

Usage: python distributed_training.py --strategy {default,mirrored,multi_worker} --loop {fit,custom}
         [--logical-cpus N] [--steps N] [--out DIR] [--checkpoints DIR] [--stop-at STEP] [--jit]
Logical CPU devices must be configured before TensorFlow initialises, hence a process per configuration.
A multi-worker run reads TF_CONFIG; only the chief writes the SavedModel to --out.
"""

import argparse
import json
import os
import sys
import tempfile

os.environ["TF_USE_LEGACY_KERAS"] = "1"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

FEATURES = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


class StopAt(tf.keras.callbacks.Callback):
    """Stands in for a killed process: raises before the batch after the optimizer's `step`-th step (so
    after the epoch checkpoint when `step` ends an epoch)."""

    def __init__(self, step: int):
        super().__init__()
        self.step = step

    def on_train_batch_begin(self, batch, logs=None):
        if int(self.model.optimizer.iterations.numpy()) >= self.step:
            raise KeyboardInterrupt(f"stopped at step {self.step}")


def penguins():
    """(train, eval) arrays: four z-scored measurements and the species index, a fixed 2:1 split."""
    from palmerpenguins import load_penguins

    table = load_penguins().dropna(subset=FEATURES + ["species"])
    x = table[FEATURES].to_numpy("float32")
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    y = table["species"].astype("category").cat.codes.to_numpy("int64").reshape(-1, 1)
    order = np.random.default_rng(0).permutation(len(x))
    cut = 2 * len(x) // 3
    return (x[order[:cut]], y[order[:cut]]), (x[order[cut:]], y[order[cut:]])


def dataset(x, y, batch, shuffle):
    features = {f"{name}_xf": x[:, [i]] for i, name in enumerate(FEATURES)}
    data = tf.data.Dataset.from_tensor_slices((features, y))
    if shuffle:
        data = data.shuffle(len(x), seed=0, reshuffle_each_iteration=True)
    # Each worker of a multi-worker run reads its own shard of the data.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.repeat().batch(batch).with_options(options)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--strategy", default="default")
    parser.add_argument("--loop", default="fit")
    parser.add_argument("--logical-cpus", type=int, default=0)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--out")
    parser.add_argument("--checkpoints")
    parser.add_argument("--stop-at", type=int)
    parser.add_argument("--jit", action="store_true")
    args = parser.parse_args()

    if args.logical_cpus:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * args.logical_cpus
        )

    from trainer_module.config import TrainerConfig
    from trainer_module.distribution import build_strategy, is_chief
    from trainer_module.models import build_classifier
    from trainer_module.training_loop import train

    tf.keras.utils.set_random_seed(0)
    config = TrainerConfig(loop=args.loop, strategy=args.strategy, jit_compile=args.jit, steps_per_epoch=25)
    strategy = build_strategy(config.strategy)
    replicas = strategy.num_replicas_in_sync
    (x_train, y_train), (x_eval, y_eval) = penguins()
    train_data = dataset(x_train, y_train, config.batch_size * replicas, shuffle=True)
    eval_data = dataset(x_eval, y_eval, config.batch_size * replicas, shuffle=False)
    with strategy.scope():
        model = build_classifier([f"{n}_xf" for n in FEATURES], {}, 3, config)
    epochs, steps_per_epoch = config.epochs_for(args.steps)
    callbacks = [StopAt(args.stop_at)] if args.stop_at else []
    try:
        _, resumed = train(
            model,
            train_data,
            eval_data,
            config,
            epochs,
            steps_per_epoch,
            4,
            callbacks,
            strategy,
            args.checkpoints,
        )
    except KeyboardInterrupt as stop:
        print(json.dumps({"stopped": str(stop), "steps": int(model.optimizer.iterations.numpy())}))
        return
    features = {f"{name}_xf": x_eval[:, [i]] for i, name in enumerate(FEATURES)}
    predicted = model.predict(features, verbose=0).argmax(axis=1)
    accuracy = float((predicted == y_eval.reshape(-1)).mean())
    if args.out and is_chief():
        model.save(args.out, save_format="tf")
    elif args.out:
        with tempfile.TemporaryDirectory() as scratch:  # the save is collective; a worker's copy is dropped
            model.save(scratch, save_format="tf")
    print(json.dumps({
        "accuracy": accuracy,
        "replicas": replicas,
        "strategy": type(strategy).__name__,
        "devices": devices(strategy),
        "steps": int(model.optimizer.iterations.numpy()),
        "resumed_from": resumed,
    }))  # fmt: skip


def devices(strategy) -> list[str]:
    """The devices the strategy places replicas on; none named for the default strategy."""
    try:
        return list(strategy.extended.worker_devices)
    except RuntimeError:  # "unsupported by default tf.distribute.Strategy"
        return []


if __name__ == "__main__":
    main()
