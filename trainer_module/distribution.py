"""tf.distribute strategies by configured name."""

from __future__ import annotations

import hashlib
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
    """Whether this process writes the model: the one process of a run without TF_CONFIG; in a cluster the
    `chief` task, or worker 0 when the cluster has no chief (Vertex's layout has a chief and workers from 0:
    its worker 0 is not the writer)."""
    tf_config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    task = tf_config.get("task", {})
    kind = task.get("type", "chief")
    if kind == "chief":
        return True
    has_chief = bool(tf_config.get("cluster", {}).get("chief"))
    return kind == "worker" and task.get("index") == 0 and not has_chief


def task_name() -> str:
    """This process's place in its cluster, as `<type>-<index>` (`chief-0`, `worker-1`); `chief-0` for the
    one process of a run without TF_CONFIG."""
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    return f"{task.get('type', 'chief')}-{task.get('index', 0)}"


def weights_digest(model: tf.keras.Model) -> str:
    """A SHA-256 of every weight's value, in the model's order: equal on every worker of a synchronous
    cluster, whose replicas hold the same variables."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(weight.name.encode())
        digest.update(weight.numpy().tobytes())
    return digest.hexdigest()
