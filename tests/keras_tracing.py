"""Trains three of the project's models deterministically and prints one JSON line of their final weights
and metrics, and of a tf.Transform graph's Keras layer applied to a few examples inside a `tf.function`
(as the serving signatures apply it), with tf_keras's and tf.Transform's code rewritten by AutoGraph
(`converted`, TensorFlow's own rules) or left as written (`unconverted`, what `trainer_module.tracing`
sets). A process per setting: AutoGraph caches what it has converted.

Usage: python keras_tracing.py converted|unconverted TRANSFORM_GRAPH_DIR EXAMPLES_JSON
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


def transformed(transform_dir: str, rows: list) -> dict:
    """The transform graph's layer on `rows` (dicts of feature -> list of values) as serialized examples."""
    import tensorflow_data_validation as tfdv
    import tensorflow_transform as tft
    from tensorflow_transform.tf_metadata import schema_utils

    from pipeline.config import DEFAULT_SCHEMA

    layer = tft.TFTransformOutput(transform_dir).transform_features_layer()
    spec = schema_utils.schema_as_feature_spec(tfdv.load_schema_text(str(DEFAULT_SCHEMA))).feature_spec
    spec = {k: v for k, v in spec.items() if any(k in row for row in rows)}

    def feature(values):  # an empty list is a missing value: no feature
        if isinstance(values[0], str):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode() for v in values]))
        if isinstance(values[0], int):
            return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))

    examples = [
        tf.train.Example(features=tf.train.Features(feature={k: feature(v) for k, v in row.items() if v}))
        for row in rows
    ]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def apply(serialized):
        return layer(tf.io.parse_example(serialized, spec))

    values = apply(tf.constant([e.SerializeToString() for e in examples]))
    return {name: np.asarray(tensor).round(6).tolist() for name, tensor in sorted(values.items())}


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
    results = {name: trained(name, *args) for name, args in runs.items()}
    with open(sys.argv[3]) as rows:
        results["transform_layer"] = transformed(sys.argv[2], json.load(rows))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
