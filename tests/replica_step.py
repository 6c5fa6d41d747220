"""One SGD step on one device and on two replicas (MirroredStrategy over two logical CPU devices) from the
same weights on the same global batch, for each catalogue loss and both loops; prints one JSON line: the
largest relative difference of the weights after the step, per "loss/loop".

Usage: python replica_step.py [--unchecked LOSS]  (trains LOSS under two replicas although the configuration
refuses it, to show what the refusal prevents). Logical CPU devices must be configured before TensorFlow
initialises, hence a process of its own.
"""

import argparse
import json
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

FEATURES = ["a_xf", "b_xf", "c_xf"]
REGRESSION_LOSSES = ("mse", "huber", "huber_fn")
GLOBAL_BATCH = 8


def batch(classification: bool):
    rng = np.random.default_rng(0)
    x = {name: rng.normal(size=(GLOBAL_BATCH, 1)).astype("float32") for name in FEATURES}
    y = rng.integers(0, 3, size=(GLOBAL_BATCH, 1)) if classification else rng.normal(size=(GLOBAL_BATCH, 1))
    return x, y.astype("int64" if classification else "float32")


def one_step(loss: str, loop: str, strategy, weights, unchecked: bool = False):
    import dataclasses

    from trainer_module.config import TrainerConfig
    from trainer_module.models import build_classifier, build_regressor
    from trainer_module.training_loop import train

    classification = loss == "sparse_categorical_crossentropy"
    # `batch_size` is per replica: the same global batch on one device and on two replicas.
    config = TrainerConfig(
        loop=loop,
        optimizer="sgd",
        learning_rate=0.1,
        hidden_units=(8,),
        dropout=0.0,
        batch_size=GLOBAL_BATCH // strategy.num_replicas_in_sync,
    )
    if unchecked:  # past the configuration's refusal: what it prevents
        object.__setattr__(config, "loss", loss)
    else:
        config = dataclasses.replace(config, loss=loss)
    x, y = batch(classification)
    data = tf.data.Dataset.from_tensors((x, y)).repeat()
    with strategy.scope():
        if classification:
            model = build_classifier(FEATURES, {}, 3, config)
        else:
            model = build_regressor(FEATURES, {}, 0.0, 1.0, config)
    if weights is not None:
        model.set_weights(weights)
    before = [w.copy() for w in model.get_weights()]
    train(model, data, data, config, 1, 1, 1, [], strategy)
    return before, model.get_weights()


def largest_relative_difference(a, b) -> float:
    return max(float(np.max(np.abs(x - y) / (np.abs(x) + 1e-6))) for x, y in zip(a, b, strict=True))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--unchecked")
    args = parser.parse_args()
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    tf.keras.utils.set_random_seed(0)
    one_device = tf.distribute.get_strategy()
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    mirrored = tf.distribute.MirroredStrategy(devices)
    results = {"replicas": mirrored.num_replicas_in_sync}
    cases = [(args.unchecked, "fit")] if args.unchecked else [
        (loss, loop)
        for loss in ("sparse_categorical_crossentropy", *REGRESSION_LOSSES)
        for loop in ("fit", "custom")
    ]  # fmt: skip
    for loss, loop in cases:
        start, single = one_step(loss, loop, one_device, None, args.unchecked is not None)
        _, replicated = one_step(loss, loop, mirrored, start, args.unchecked is not None)
        moved_single = [s - b for s, b in zip(single, start, strict=True)]
        moved_replicated = [r - b for r, b in zip(replicated, start, strict=True)]
        results[f"{loss}/{loop}"] = {
            "difference": largest_relative_difference(single, replicated),
            "step_ratio": float(
                np.linalg.norm(np.concatenate([m.ravel() for m in moved_replicated]))
                / np.linalg.norm(np.concatenate([m.ravel() for m in moved_single]))
            ),
        }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
