"""Loads a SavedModel in a fresh interpreter and calls `serving_default` as TF Serving would.

    python -m components.serving_probe MODEL_DIR REQUESTS_TFRECORD

REQUESTS_TFRECORD holds serialized tf.Examples. Prints one JSON line: `ok`, and per output its shape,
dtype and whether every value is finite; or the error. Run as a separate process so that nothing the
Trainer registered in its own process (custom objects, imported modules) can hide a model that does not
load or serve on its own. Imports no trainer code.
"""

import json
import sys

import numpy as np
import tensorflow as tf


def probe(model_dir: str, requests_path: str) -> dict:
    requests = [r.numpy() for r in tf.data.TFRecordDataset(requests_path)]
    try:
        model = tf.saved_model.load(model_dir)
        if "serving_default" not in model.signatures:
            return {"ok": False, "error": "the SavedModel has no serving_default signature"}
        outputs = model.signatures["serving_default"](examples=tf.constant(requests))
    except Exception as error:  # noqa: BLE001 - whatever breaks is reported, not raised
        return {"ok": False, "error": f"{type(error).__name__}: {' '.join(str(error).split())[:400]}"}
    report = {}
    for name, tensor in outputs.items():
        values = tensor.numpy()
        numeric = np.issubdtype(values.dtype, np.number)
        report[name] = {
            "shape": list(values.shape),
            "dtype": tensor.dtype.name,
            "finite": bool(np.isfinite(values).all()) if numeric else True,
        }
    return {"ok": True, "requests": len(requests), "outputs": report}


if __name__ == "__main__":
    from pipeline.storage.filesystems import finish

    print(json.dumps(probe(sys.argv[1], sys.argv[2])))
    finish(0)  # a model on s3:// would otherwise end this process with tensorflow-io's abort (status 134)
