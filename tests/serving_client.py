"""Queries a pushed SavedModel the way TF Serving does, in a process that does not import the project.

Usage: python serving_client.py MODEL_DIR EXAMPLES_GLOB LABEL_KEY [LABEL_KEY...]
Reads gzipped TFRecords of tf.Examples, drops the labels (a serving request has none), sends the serialized
examples to `serving_default` and prints a JSON line: how many were scored, whether any project package
got imported, and per label the accuracy of the returned class names (classification) or the RMSE of the
predictions (regression). With one label its figures are at the top level; with several (a multi-output
model, whose outputs are prefixed with the label) they are under "heads", keyed by label.
"""

import glob
import json
import math
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import tensorflow as tf  # noqa: E402

PROJECT_PACKAGES = ("pipeline", "components", "trainer_module")


def label_value(feature):
    kind = feature.WhichOneof("kind")
    value = getattr(feature, kind).value[0]
    return value.decode() if isinstance(value, bytes) else value


def head_figures(outputs, prefix: str, labels: list) -> dict:
    if f"{prefix}classes" in outputs:
        predicted = [c.decode() for c in outputs[f"{prefix}classes"].numpy()]
        probabilities = outputs[f"{prefix}probabilities"].numpy()
        return {
            "accuracy": sum(p == str(y) for p, y in zip(predicted, labels, strict=True)) / len(labels),
            "probability_sums": [float(s) for s in probabilities.sum(axis=1)[:5]],
            "classes_seen": sorted(set(predicted)),
        }
    predicted = outputs[f"{prefix}predictions"].numpy().reshape(-1)
    errors = [(float(p) - float(y)) ** 2 for p, y in zip(predicted, labels, strict=True)]
    return {
        "rmse": math.sqrt(sum(errors) / len(errors)),
        "prediction_range": [float(predicted.min()), float(predicted.max())],
    }


def main(model_dir: str, examples_glob: str, *label_keys: str) -> None:
    requests, labels = [], {key: [] for key in label_keys}
    for record in tf.data.TFRecordDataset(sorted(glob.glob(examples_glob)), compression_type="GZIP"):
        example = tf.train.Example.FromString(record.numpy())
        for key in label_keys:
            labels[key].append(label_value(example.features.feature[key]))
            del example.features.feature[key]
        requests.append(example.SerializeToString())

    model = tf.saved_model.load(model_dir)
    outputs = model.signatures["serving_default"](examples=tf.constant(requests))
    result = {
        "count": len(requests),
        "project_imported": [p for p in PROJECT_PACKAGES if p in sys.modules],
        "outputs": sorted(outputs),
    }
    if len(label_keys) == 1:
        result.update(head_figures(outputs, "", labels[label_keys[0]]))
    else:
        result["heads"] = {key: head_figures(outputs, f"{key}_", labels[key]) for key in label_keys}
    print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:])
