"""The Trainer's input pipeline (`trainer_module.run.input_fn`) on transformed examples written to gzipped
TFRecord files, with the transform output of a real tf.Transform run."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from trainer_module.run import input_fn, window_size

EXAMPLES, FILES, BATCH = 1024, 4, 32


def example(identifier: int) -> bytes:
    features = {
        "id_xf": tf.train.Feature(float_list=tf.train.FloatList(value=[identifier])),
        "kind_xf": tf.train.Feature(int64_list=tf.train.Int64List(value=[identifier % 3])),
        "size_xf": tf.train.Feature(float_list=tf.train.FloatList(value=[identifier / 2])),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    """(file patterns of EXAMPLES examples in FILES gzipped files, the TFTransformOutput that describes
    them): ids 0..EXAMPLES-1, label `kind` = id % 3, label `size` = id / 2."""
    spec = {
        "id": tf.io.FixedLenFeature([1], tf.float32),
        "kind": tf.io.FixedLenFeature([1], tf.int64),
        "size": tf.io.FixedLenFeature([1], tf.float32),
    }
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    graph_dir = str(tmp_path_factory.mktemp("transform_graph"))
    rows = [{"id": [1.0], "kind": [1], "size": [0.5]}]
    with tft_beam.Context(temp_dir=str(tmp_path_factory.mktemp("tft_tmp"))):
        _, transform_fn = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
            lambda inputs: {f"{name}_xf": value for name, value in inputs.items()}
        )
        _ = transform_fn | tft_beam.WriteTransformFn(graph_dir)
    examples_dir = tmp_path_factory.mktemp("transformed_examples")
    per_file = EXAMPLES // FILES
    for f in range(FILES):
        with tf.io.TFRecordWriter(str(examples_dir / f"part-{f}.gz"), "GZIP") as writer:
            for identifier in range(f * per_file, (f + 1) * per_file):
                writer.write(example(identifier))
    return [str(examples_dir / "*")], tft.TFTransformOutput(graph_dir)


def first_batches(dataset, batches: int):
    return list(dataset.take(batches).as_numpy_iterator())


def test_every_example_comes_equally_often_shuffled_with_its_own_label(transformed):
    patterns, output = transformed
    window = window_size(output.transformed_feature_spec(), BATCH)
    assert window % EXAMPLES == 0 and window > EXAMPLES  # a window would hold several passes
    batches = first_batches(input_fn(patterns, output, ["kind"], BATCH), window // BATCH)
    assert {features["id_xf"].shape for features, _ in batches} == {(BATCH, 1)}
    ids = np.concatenate([features["id_xf"][:, 0] for features, _ in batches]).astype(int)
    labels = np.concatenate([label[:, 0] for _, label in batches])
    assert collections.Counter(ids) == {i: window // EXAMPLES for i in range(EXAMPLES)}
    # A pass over data smaller than a window is one window: every pass is a permutation of the examples.
    for start in range(0, window, EXAMPLES):
        assert sorted(ids[start : start + EXAMPLES]) == list(range(EXAMPLES))
    np.testing.assert_array_equal(labels, ids % 3)  # features and label permuted together
    assert "kind_xf" not in batches[0][0]
    # Shuffled: a batch is not a run of consecutive ids, and the first pass is not in file order.
    assert not np.array_equal(ids[:BATCH], np.arange(ids[0], ids[0] + BATCH))
    assert sorted(ids[:EXAMPLES]) != list(ids[:EXAMPLES])


def test_every_build_of_the_pipeline_gives_the_same_order(transformed):
    """What makes sharding by data split the batches between the workers of a cluster."""
    patterns, output = transformed
    first, second = (first_batches(input_fn(patterns, output, ["kind"], BATCH), 40) for _ in range(2))
    for (a, _), (b, _) in zip(first, second, strict=True):
        np.testing.assert_array_equal(a["id_xf"], b["id_xf"])


def test_several_labels_come_as_a_dict_by_head(transformed):
    patterns, output = transformed
    ((features, labels),) = first_batches(input_fn(patterns, output, ["kind", "size"], BATCH), 1)
    assert set(features) == {"id_xf"} and set(labels) == {"kind", "size"}
    np.testing.assert_array_equal(labels["kind"][:, 0], features["id_xf"][:, 0].astype(int) % 3)
    np.testing.assert_allclose(labels["size"][:, 0], features["id_xf"][:, 0] / 2)


def test_windows_are_whole_batches_and_smaller_for_large_examples():
    tabular = {"x": tf.io.FixedLenFeature([1], tf.float32), "y": tf.io.FixedLenFeature([1], tf.int64)}
    assert window_size(tabular, 32) == 8192
    assert window_size(tabular, 100) == 8100
    image = {"pixels": tf.io.FixedLenFeature([224, 224, 3], tf.float32)}
    assert window_size(image, 32) == 96  # 64 MiB holds 111 images of 588 KiB
    assert window_size(image, 256) == 256  # never under one batch


def test_no_files_is_one_clear_error(tmp_path, transformed):
    _, output = transformed
    with pytest.raises(ValueError, match="no transformed examples match .*Transform wrote none"):
        input_fn([str(tmp_path / "*")], output, ["kind"], BATCH)
