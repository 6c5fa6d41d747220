"""Trains three of the project's models deterministically and prints one JSON line of their final weights
and metrics, with tf_keras's code rewritten by AutoGraph (`converted`, TensorFlow's own rules) or left as
written (`unconverted`, what `trainer_module.tracing` sets). A process per setting: AutoGraph caches what it
has converted.

Usage: python keras_tracing.py converted|unconverted
"""

import hashlib
import json
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.autograph.core import config as autograph_config  # noqa: E402

TENSORFLOW_RULES = autograph_config.CONVERSION_RULES

from trainer_module import models  # noqa: E402  (adds the tf_keras rule)
from trainer_module.config import TrainerConfig  # noqa: E402
from trainer_module.run import with_label_per_output  # noqa: E402
from trainer_module.training_loop import train  # noqa: E402

ROWS, BATCH, EPOCHS, STEPS = 64, 16, 2, 4


def data(classification: bool) -> tf.data.Dataset:
    rng = np.random.default_rng(0)
    x = {
        "a_xf": rng.normal(size=(ROWS, 1)).astype("float32"),
        "b_xf": rng.normal(size=(ROWS, 1)).astype("float32"),
        "c_xf": rng.integers(0, 3, size=(ROWS, 1)).astype("int64"),
    }
    y = rng.integers(0, 3, size=(ROWS, 1)) if classification else 50 + 10 * rng.normal(size=(ROWS, 1))
    return tf.data.Dataset.from_tensor_slices((x, y.astype("int64" if classification else "float32")))


def trained(name: str, build, config: TrainerConfig, classification: bool) -> dict:
    tf.keras.utils.set_random_seed(0)
    model = build(config)
    dataset = with_label_per_output(data(classification).batch(BATCH).repeat(), model)
    history, _ = train(model, dataset, dataset, config, EPOCHS, STEPS, 2, [], tf.distribute.get_strategy())
    weights = hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()
    metrics = {k: [round(float(v), 6) for v in values] for k, values in history.history.items()}
    return {"weights": weights, "history": metrics}


def main() -> None:
    if sys.argv[1] == "converted":
        autograph_config.CONVERSION_RULES = TENSORFLOW_RULES
    tf.config.experimental.enable_op_determinism()
    numeric, categorical = ["a_xf", "b_xf"], {"c_xf": 3}
    runs = {
        "wide_and_deep": (
            lambda c: models.build_wide_and_deep_classifier(numeric, categorical, 3, c),
            TrainerConfig(),
            True,
        ),
        "classifier_custom_loop": (
            lambda c: models.build_classifier(numeric, categorical, 3, c),
            TrainerConfig(model="mlp", loop="custom"),
            True,
        ),
        "regressor_huber_fn": (
            lambda c: models.build_regressor(numeric, categorical, 50.0, 10.0, c),
            TrainerConfig(model="quadratic_mlp", loss="huber_fn"),
            False,
        ),
    }
    print(json.dumps({name: trained(name, *args) for name, args in runs.items()}))


if __name__ == "__main__":
    main()
