"""Scores CSV rows with a SavedModel's `serving_default` directly, as a TF Serving client would, in a process
that imports nothing of the project: each row becomes a tf.train.Example built in Python (a value of the
feature's type per non-empty cell), all rows go in one request.

Usage: python direct_scores.py MODEL_DIR CSV_FILE
       python direct_scores.py MODEL_DIR RECORDS.tfrecord.gz   (examples sent as they are: image models)
Prints one JSON line: output name -> the list of per-row values (strings decoded).
"""

import csv
import json
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import tensorflow as tf  # noqa: E402


def main(model_dir: str, csv_path: str) -> None:
    with open(os.path.join(model_dir, "assets.extra", "prediction_spec.json")) as f:
        features = json.load(f)["features"]
    if csv_path.endswith(".tfrecord.gz"):
        records = tf.data.TFRecordDataset(csv_path, compression_type="GZIP")
        score(model_dir, [record.numpy() for record in records])
        return
    requests = []
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            example = tf.train.Example()
            for name, kind in features.items():
                value = row.get(name, "")
                if value == "":
                    continue
                feature = example.features.feature[name]
                if kind == "int":
                    feature.int64_list.value.append(int(value))
                elif kind == "float":
                    feature.float_list.value.append(float(value))
                else:
                    feature.bytes_list.value.append(value.encode())
            requests.append(example.SerializeToString())
    score(model_dir, requests)


def score(model_dir: str, requests: list) -> None:
    outputs = tf.saved_model.load(model_dir).signatures["serving_default"](examples=tf.constant(requests))
    result = {}
    for name, tensor in outputs.items():
        values = tensor.numpy().tolist()
        result[name] = [
            v.decode() if isinstance(v, bytes) else [x.decode() if isinstance(x, bytes) else x for x in v]
            if isinstance(v, list) else v
            for v in values
        ]  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:])
