"""Queries a pushed siamese SavedModel the way TF Serving does, in a process that does not import the project.

Usage: python similarity_client.py MODEL_DIR EXAMPLES_GLOB
Reads the gzipped evaluation pair examples (two PNGs, `same`, `label`), drops the labels, sends the pairs to
`serving_default` and their first images alone to `embedding`, and prints a JSON line: the mean distance of
same-class and of different-class pairs, the pair accuracy (distance < 0.5 means "same"), the embedding's
shape, and whether any project package got imported.
"""

import glob
import json
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

PROJECT_PACKAGES = ("pipeline", "components", "trainer_module")


def main(model_dir: str, examples_glob: str) -> None:
    pairs, singles, same = [], [], []
    for record in tf.data.TFRecordDataset(sorted(glob.glob(examples_glob)), compression_type="GZIP"):
        example = tf.train.Example.FromString(record.numpy())
        features = example.features.feature
        same.append(features["same"].int64_list.value[0])
        del features["same"], features["label"]
        pairs.append(example.SerializeToString())
        del features["other_image"]
        singles.append(example.SerializeToString())

    model = tf.saved_model.load(model_dir)
    outputs = model.signatures["serving_default"](examples=tf.constant(pairs))
    distance = outputs["distance"].numpy().reshape(-1)
    same = np.array(same, bool)
    embedding = model.signatures["embedding"](examples=tf.constant(singles))["embedding"].numpy()
    print(
        json.dumps(
            {
                "count": len(pairs),
                "outputs": sorted(outputs),
                "same_class_mean_distance": float(distance[same].mean()),
                "different_class_mean_distance": float(distance[~same].mean()),
                "pair_accuracy": float(((distance < 0.5) == same).mean()),
                "same_output_agrees": bool((outputs["same"].numpy().reshape(-1) == (distance < 0.5)).all()),
                "embedding_shape": list(embedding.shape),
                "project_imported": [p for p in PROJECT_PACKAGES if p in sys.modules],
            }
        )
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
