"""Queries a pushed SavedModel the way TF Serving does, in a process that does not import the project.

Usage: python serving_client.py MODEL_DIR EXAMPLES_GLOB LABEL_KEY
Reads gzipped TFRecords of tf.Examples, drops the label (a serving request has none), sends the serialized
examples to `serving_default` and prints a JSON line: how many were scored, the accuracy of the returned
class names (classifiers) or the RMSE of the predictions (regressors), and whether any project package
got imported.
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


def main(model_dir: str, examples_glob: str, label_key: str) -> None:
    requests, labels = [], []
    for record in tf.data.TFRecordDataset(sorted(glob.glob(examples_glob)), compression_type="GZIP"):
        example = tf.train.Example.FromString(record.numpy())
        labels.append(label_value(example.features.feature[label_key]))
        del example.features.feature[label_key]
        requests.append(example.SerializeToString())

    model = tf.saved_model.load(model_dir)
    outputs = model.signatures["serving_default"](examples=tf.constant(requests))
    result = {"count": len(requests), "project_imported": [p for p in PROJECT_PACKAGES if p in sys.modules]}
    if "classes" in outputs:
        predicted = [c.decode() for c in outputs["classes"].numpy()]
        probabilities = outputs["probabilities"].numpy()
        result["accuracy"] = sum(p == str(y) for p, y in zip(predicted, labels, strict=True)) / len(labels)
        result["probability_sums"] = [float(s) for s in probabilities.sum(axis=1)[:5]]
        result["classes_seen"] = sorted(set(predicted))
    else:
        predicted = outputs["predictions"].numpy().reshape(-1)
        errors = [(float(p) - float(y)) ** 2 for p, y in zip(predicted, labels, strict=True)]
        result["rmse"] = math.sqrt(sum(errors) / len(errors))
        result["prediction_range"] = [float(predicted.min()), float(predicted.max())]
    print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:4])
