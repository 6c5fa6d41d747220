"""tf.distribute strategies by configured name."""

from __future__ import annotations

import json
import os

import tensorflow as tf

from trainer_module.config import STRATEGIES


def build_strategy(name: str) -> tf.distribute.Strategy:
    """`default`: no distribution; `one_device`: everything on the first GPU, else the CPU; `mirrored`: one
    replica per local GPU (or per logical CPU device, as the tests configure); `multi_worker`: one replica
    set per worker, the workers named in the TF_CONFIG environment variable."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; valid choices: {', '.join(STRATEGIES)}")


def is_chief() -> bool:
    """True unless this process is a non-chief worker of a multi-worker cluster (TF_CONFIG)."""
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    return task.get("type", "chief") == "chief" or (task.get("type") == "worker" and task.get("index") == 0)
