"""The pre-push serving check: the candidate must serve label-free requests before it is pushed.

TFX's InfraValidator needs Docker or Kubernetes to start a model server. This component gets most of its
value without one: it loads the candidate in a clean process (`components.serving_probe`), sends
`serving_default` serialized examples from the eval split with the label removed (the SERVING
environment), and checks that every output has one row per request and only finite numbers. On success it
writes the model, plus TF Serving warm-up requests in `assets.extra/`, into an InfraBlessing artifact
that the Pusher pushes from. On failure the run stops with one line saying why; nothing is pushed.
"""

import json
import os
import subprocess
import sys
import tempfile

import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils
from tfx.types.standard_artifacts import Examples, InfraBlessing, Model
from tfx.utils import io_utils, path_utils

PROBE_TIMEOUT_S = 600


class ServingCheckError(RuntimeError):
    """The candidate model cannot serve requests."""


def serving_requests(examples: Examples, labels: list[str], count: int) -> list[bytes]:
    """Up to `count` serialized eval examples without the labels, in file order (deterministic)."""
    splits = artifact_utils.decode_split_names(examples.split_names)
    split = "eval" if "eval" in splits else splits[0]
    files = sorted(tf.io.gfile.glob(os.path.join(artifact_utils.get_split_uri([examples], split), "*")))
    requests = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP").take(count):
        example = tf.train.Example.FromString(record.numpy())
        for label in labels:
            if label in example.features.feature:
                del example.features.feature[label]
        # Deterministic: map order would otherwise vary between processes, and so would the pushed files.
        requests.append(example.SerializeToString(deterministic=True))
    return requests


def problems(report: dict, expected_rows: int) -> list[str]:
    """What is wrong with a probe report; empty when the model served correctly."""
    if not report.get("ok"):
        return [f"serving_default failed on examples without the label: {report.get('error')}"]
    if not report["outputs"]:
        return ["serving_default returned no outputs"]
    found = []
    for name, output in sorted(report["outputs"].items()):
        if not output["shape"] or output["shape"][0] != expected_rows:
            found.append(f"output {name!r} has shape {output['shape']}, expected {expected_rows} rows")
        if not output["finite"]:
            found.append(f"output {name!r} holds NaN or infinite values")
    return found


def probe_model(model_dir: str, requests: list[bytes]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        requests_path = os.path.join(tmp, "requests.tfrecord")
        with tf.io.TFRecordWriter(requests_path) as writer:
            for request in requests:
                writer.write(request)
        result = subprocess.run(
            [sys.executable, "-m", "components.serving_probe", model_dir, requests_path],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        tail = " ".join(result.stderr.strip().splitlines()[-1:])
        return {"ok": False, "error": f"the model could not be loaded in a clean process: {tail}"}
    return json.loads(lines[-1])


def write_warmup_requests(model_dir: str, requests: list[bytes]) -> str:
    """TF Serving replays these at load time so the first real request is not slow."""
    path = path_utils.warmup_file_path(model_dir)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for request in requests:
            predict = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(signature_name="serving_default")
            )
            predict.inputs["examples"].CopyFrom(tf.make_tensor_proto([request], dtype=tf.string))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=predict))
            writer.write(log.SerializeToString(deterministic=True))
    return path


@component
def ServingCheck(
    model: InputArtifact[Model],
    examples: InputArtifact[Examples],
    blessing: OutputArtifact[InfraBlessing],
    label_keys: Parameter[str],
    num_requests: Parameter[int] = 10,
) -> None:
    """Blesses a model that serves label-free requests; raises ServingCheckError otherwise.

    `label_keys`: a JSON list of the label columns (several for a multi-output model).
    """
    model_dir = path_utils.serving_model_path(model.uri)
    requests = serving_requests(examples, json.loads(label_keys), num_requests)
    found = problems(probe_model(model_dir, requests), len(requests))
    if found:
        raise ServingCheckError(
            f"Serving check: the candidate model cannot serve, so it was not pushed: {'; '.join(found)}. "
            "Fix the serving signature in the trainer code (trainer_module/serving.py): it must take "
            "serialized tf.Examples without the label and return one finite row per example."
        )
    stamped = path_utils.stamped_model_path(blessing.uri)
    io_utils.copy_dir(model_dir, stamped)
    write_warmup_requests(stamped, requests)
    blessing.set_int_custom_property("blessed", 1)
    blessing.set_int_custom_property("has_model", 1)
