"""The pre-push serving check on real SavedModels: one that serves, and ones that cannot."""

from __future__ import annotations

import os

import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import path_utils

from components.serving_check import ServingCheck, ServingCheckError


class Scorer(tf.Module):
    """serving_default over serialized examples; `needs_label` parses the label as required."""

    def __init__(self, needs_label=False, poison=False):
        super().__init__()
        spec = {"x": tf.io.FixedLenFeature([1], tf.float32, default_value=[0.0])}
        if needs_label:
            spec["y"] = tf.io.FixedLenFeature([1], tf.float32)
        self.spec, self.poison = spec, poison

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(self, examples):
        x = tf.io.parse_example(examples, self.spec)["x"]
        return {"predictions": tf.math.log(-tf.abs(x) - 1.0) if self.poison else x * 2.0}


def save_model(tmp_path, name, **kwargs):
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / name)
    module = Scorer(**kwargs)
    tf.saved_model.save(
        module, path_utils.serving_model_path(model.uri), signatures={"serving_default": module.serve}
    )
    return model


@pytest.fixture
def examples(tmp_path):
    artifact = standard_artifacts.Examples()
    artifact.uri = str(tmp_path / "examples")
    artifact.split_names = artifact_utils.encode_split_names(["train", "eval"])
    for split in ("train", "eval"):
        directory = artifact_utils.get_split_uri([artifact], split)
        os.makedirs(directory)
        with tf.io.TFRecordWriter(os.path.join(directory, "data.gz"), options="GZIP") as writer:
            for i in range(20):
                example = tf.train.Example()
                example.features.feature["x"].float_list.value.append(float(i))
                example.features.feature["y"].float_list.value.append(2.0 * i)
                writer.write(example.SerializeToString())
    return artifact


def check(tmp_path, model, examples):
    blessing = standard_artifacts.InfraBlessing()
    blessing.uri = str(tmp_path / "blessing")
    os.makedirs(blessing.uri, exist_ok=True)
    ServingCheck.EXECUTOR_SPEC.executor_class().Do(
        {"model": [model], "examples": [examples]},
        {"blessing": [blessing]},
        {"label_keys": '["y"]', "num_requests": 5},
    )
    return blessing


def test_a_serving_model_is_blessed_with_warmup_requests(tmp_path, examples):
    blessing = check(tmp_path, save_model(tmp_path, "good"), examples)
    assert blessing.get_int_custom_property("blessed") == 1
    assert blessing.get_int_custom_property("has_model") == 1

    stamped = path_utils.stamped_model_path(blessing.uri)
    assert tf.saved_model.contains_saved_model(stamped)
    warmup = path_utils.warmup_file_path(stamped)
    assert warmup.endswith(os.path.join("assets.extra", "tf_serving_warmup_requests"))
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(warmup)]
    assert len(logs) == 5
    request = logs[0].predict_log.request
    assert request.model_spec.signature_name == "serving_default"
    sent = tf.train.Example.FromString(tf.make_ndarray(request.inputs["examples"])[0])
    assert set(sent.features.feature) == {"x"}  # the label was removed, as in the SERVING environment


def test_a_signature_that_requires_the_label_is_blocked(tmp_path, examples):
    with pytest.raises(ServingCheckError) as raised:
        check(tmp_path, save_model(tmp_path, "needs_label", needs_label=True), examples)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("Serving check: the candidate model cannot serve, so it was not pushed:")
    assert "serving_default failed on examples without the label" in message and "y" in message
    assert not os.path.exists(path_utils.stamped_model_path(str(tmp_path / "blessing")))


def test_non_finite_outputs_are_blocked(tmp_path, examples):
    with pytest.raises(ServingCheckError, match="output 'predictions' holds NaN or infinite values"):
        check(tmp_path, save_model(tmp_path, "poison", poison=True), examples)


def test_a_directory_that_is_not_a_saved_model_is_blocked(tmp_path, examples):
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "empty")
    os.makedirs(path_utils.serving_model_path(model.uri))
    with pytest.raises(ServingCheckError, match="serving_default failed on examples without the label"):
        check(tmp_path, model, examples)
