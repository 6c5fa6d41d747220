"""The executors that read and write examples by the batch give what TFX's give, on examples in several files
per split with missing values: Transform the same vocabularies and the same transformed examples in the
same splits and files (in one process and with two Beam workers), StatisticsGen the same statistics; and
the TFRecord framing is TensorFlow's, byte for byte."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re

import numpy as np
import pyarrow.compute as pc
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
from apache_beam.options.pipeline_options import PipelineOptions
from tfx.components.statistics_gen import executor as tfx_statistics_gen
from tfx.components.transform import executor as tfx_transform
from tfx.types import standard_artifacts
from tfx_bsl.coders import example_coder

from components import batched_examples, csv_example_gen, statistics_gen, transform
from pipeline.data import write_generated_penguins
from tests.test_csv_example_gen import run_executor as run_example_gen

SCHEMA_DIR = os.path.join(os.path.dirname(__file__), "..", "schemas", "penguins")
CUSTOM_CONFIG = {"labels": [["species", "classification"]], "code_fingerprint": "test", "spans": None}
SPLITS = ("train", "eval")


def examples_artifact(examples_dir) -> standard_artifacts.Examples:
    examples = standard_artifacts.Examples()
    examples.uri = str(examples_dir)
    examples.split_names = json.dumps(list(SPLITS))
    return examples


def run_statistics_gen(executor_class, examples_dir, out_dir) -> dict:
    """Each split's statistics, by feature name."""
    statistics = standard_artifacts.ExampleStatistics()
    statistics.uri = str(out_dir)
    executor = executor_class(executor_class.Context(tmp_dir=str(out_dir / "tmp"), unique_id="1"))
    executor.Do({"examples": [examples_artifact(examples_dir)]}, {"statistics": [statistics]}, {})
    by_split = {}
    for split in SPLITS:
        (dataset,) = tfdv.load_stats_binary(f"{out_dir}/Split-{split}/FeatureStats.pb").datasets
        by_split[split] = (dataset.num_examples, {f.path.step[0]: f for f in dataset.features})
    return by_split


def run_transform(executor_class, examples_dir, out_dir, beam_args=()) -> None:
    examples = examples_artifact(examples_dir)
    schema = standard_artifacts.Schema()
    schema.uri = SCHEMA_DIR
    graph = standard_artifacts.TransformGraph()
    graph.uri = str(out_dir / "graph")
    transformed = standard_artifacts.Examples()
    transformed.uri = str(out_dir / "examples")
    context = executor_class.Context(
        tmp_dir=str(out_dir / "tmp"), unique_id="1", beam_pipeline_args=list(beam_args)
    )
    executor = executor_class(context)
    executor.Do(
        {"examples": [examples], "schema": [schema]},
        {"transform_graph": [graph], "transformed_examples": [transformed]},
        {
            "preprocessing_fn": "trainer_module.preprocessing.preprocessing_fn",
            "custom_config": json.dumps(CUSTOM_CONFIG),
            "disable_statistics": 1,
            "force_tf_compat_v1": 0,
        },
    )


def transformed_rows(out_dir, split) -> tuple[list[str], np.ndarray, list[str]]:
    """A split's transformed examples: their feature names, their rows sorted, and the files they are in."""
    files = sorted(glob.glob(f"{out_dir}/examples/Split-{split}/*"))
    rows, names = [], None
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        features = tf.train.Example.FromString(record.numpy()).features.feature
        names = names or sorted(features)
        rows.append([getattr(features[n], features[n].WhichOneof("kind")).value[0] for n in names])
    rows = np.array(rows, dtype=np.float64)
    return names, rows[np.lexsort(np.round(rows, 4).T[::-1])], [os.path.basename(f) for f in files]


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    root = tmp_path_factory.mktemp("transform")
    write_generated_penguins(root / "data" / "penguins.csv", 3000, seed=3)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(csv_example_gen, "BLOCK_BYTES", 16 << 10)  # several files per split, as at scale
        run_example_gen(csv_example_gen.Executor(), root / "data", root / "examples")
    run_transform(tfx_transform.Executor, root / "examples", root / "tfx")
    with reads_counted() as reads:
        run_transform(transform.Executor, root / "examples", root / "ours")
    (root / "ours" / "reads.json").write_text(json.dumps(reads))
    return root


@contextlib.contextmanager
def reads_counted():
    """The files batched_examples reads while in the block (Beam's in_memory mode runs the DoFns here)."""
    reads = []
    read_batches = batched_examples.read_batches

    def counted(path, size):
        reads.append(os.path.relpath(path, os.path.dirname(os.path.dirname(path))))
        return read_batches(path, size)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batched_examples, "read_batches", counted)
        yield reads


def input_files(root, splits=SPLITS) -> list[str]:
    return sorted(
        os.path.relpath(path, root / "examples")
        for split in splits
        for path in glob.glob(f"{root}/examples/Split-{split}/*")
    )


@pytest.fixture(scope="module")
def statistics(both):
    tfx = run_statistics_gen(tfx_statistics_gen.Executor, both / "examples", both / "tfx_statistics")
    with reads_counted() as reads:
        ours = run_statistics_gen(statistics_gen.Executor, both / "examples", both / "statistics")
    return tfx, ours, reads


def test_transform_in_one_worker_reads_each_file_once_by_the_batch(both):
    """The transformation pass takes the train split's batches from the analysis pass."""
    reads = json.loads((both / "ours" / "reads.json").read_text())
    assert sorted(reads) == input_files(both)


@pytest.fixture(scope="module")
def two_threads(both):
    """The project's executor with two Beam workers in this process (threads): each pass reads its files."""
    two = ("--direct_running_mode=multi_threading", "--direct_num_workers=2")
    with reads_counted() as reads:
        run_transform(transform.Executor, both / "examples", both / "two_threads", two)
    return both / "two_threads", reads


def test_transform_in_several_workers_reads_the_train_split_for_each_pass(both, two_threads):
    assert sorted(two_threads[1]) == sorted(input_files(both, ["train"]) + input_files(both))


def test_statistics_gen_reads_each_file_once_by_the_batch(both, statistics):
    assert sorted(statistics[2]) == input_files(both)


@pytest.mark.parametrize("split", SPLITS)
def test_the_same_statistics_as_tfx(statistics, split):
    tfx_count, tfx = statistics[0][split]
    count, ours = statistics[1][split]
    assert count == tfx_count > 900
    assert sorted(ours) == sorted(tfx) and len(tfx) == 8
    for name, feature in tfx.items():
        mine = type(feature)()
        mine.CopyFrom(ours[name])
        if feature.HasField("num_stats"):
            # float64 sums of squares in another order: the last bit may differ
            assert mine.num_stats.std_dev == pytest.approx(feature.num_stats.std_dev, rel=1e-12)
            mine.num_stats.std_dev = feature.num_stats.std_dev
        # counts, means, ranges, quantiles, histograms, top values: exactly TFX's
        assert mine == feature, name


def test_the_input_has_several_files_per_split_and_missing_values(both):
    assert all(len(glob.glob(f"{both}/examples/Split-{split}/*")) >= 3 for split in SPLITS)
    record = tf.data.TFRecordDataset(glob.glob(f"{both}/examples/Split-train/*"), compression_type="GZIP")
    decoded = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch([r.numpy() for r in record])
    # ExampleGen writes an empty cell as a feature without values
    assert pc.sum(pc.equal(pc.list_value_length(decoded.column("sex")), 0)).as_py() > 0


@pytest.fixture(scope="module")
def two_workers(both):
    """The project's executor in Beam's multi_processing mode: the files read by two worker processes."""
    two = ("--direct_running_mode=multi_processing", "--direct_num_workers=2")
    run_transform(transform.Executor, both / "examples", both / "two_workers", two)
    return both / "two_workers"


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("ours", ["ours", "two_workers", "two_threads"])
def test_the_same_transformed_examples_in_the_same_files_as_tfx(both, request, ours, split):
    if ours != "ours":
        request.getfixturevalue(ours)
    tfx_names, tfx_rows, tfx_files = transformed_rows(both / "tfx", split)
    names, rows, files = transformed_rows(both / ours, split)
    assert names == tfx_names
    if ours == "ours":  # in one process, as TFX's ran; workers may each write a shard
        assert files == tfx_files
    assert all(re.fullmatch(r"transformed_examples-\d{5}-of-\d{5}\.gz", name) for name in files)
    assert len(rows) == len(tfx_rows) > 500
    # The analyzers' sums are float32 and their order follows the batches: values agree within rounding.
    np.testing.assert_allclose(rows, tfx_rows, rtol=1e-5, atol=1e-6)
    categorical = [i for i, n in enumerate(names) if n in ("island_xf", "sex_xf", "species_xf")]
    np.testing.assert_array_equal(rows[:, categorical], tfx_rows[:, categorical])


def test_the_same_vocabularies_as_tfx(both):
    assets = sorted(glob.glob(f"{both}/tfx/graph/transform_fn/assets/*"))
    assert assets
    for path in assets:
        with open(path, "rb") as tfx_file, open(path.replace("/tfx/", "/ours/"), "rb") as ours:
            assert ours.read() == tfx_file.read(), os.path.basename(path)


def test_tfrecord_framing_is_tensorflows_byte_for_byte(tmp_path):
    records = [b"", b"x", bytes(range(256)) * 40, b"penguin"]
    path = str(tmp_path / "tf.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for record in records:
            writer.write(record)
    with open(path, "rb") as written:
        assert batched_examples.tfrecords(records) == written.read()


def test_files_are_read_in_order_in_batches_of_the_given_size(tmp_path):
    path = str(tmp_path / "records.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for i in range(25):
            writer.write(str(i).encode())
    batches = list(batched_examples.read_batches(path, 10))
    assert [len(b) for b in batches] == [10, 10, 5]
    assert [int(r) for b in batches for r in b] == list(range(25))
    assert batched_examples.examples_per_batch(None) == 1000 and batched_examples.examples_per_batch(7) == 7


@pytest.mark.parametrize(
    "beam_args, one_worker",
    [
        (None, True),
        ([], True),
        (["--direct_running_mode=in_memory"], True),
        (["--direct_running_mode=multi_processing", "--direct_num_workers=1"], True),
        (["--direct_running_mode=multi_processing", "--direct_num_workers=2"], False),
        (["--direct_running_mode=multi_processing", "--direct_num_workers=0"], False),  # one per core
        (["--direct_running_mode=multi_threading", "--direct_num_workers=2"], False),
        (["--runner=DataflowRunner", "--project=p", "--region=r"], False),
        (["--runner=FlinkRunner"], False),
    ],
)
def test_one_worker_is_the_direct_runner_with_one_worker(beam_args, one_worker):
    """In one worker a step's output stays in memory until the next step reads it: ExampleGen streams each
    block from reading to writing there (spreading blocks, a shuffle, would make the runner hold the whole
    dataset first), and Transform's passes share the train split's read only there."""
    assert batched_examples.in_one_worker(PipelineOptions(beam_args or [])) is one_worker


def test_a_read_is_held_for_a_second_reader_only_in_one_worker_and_up_to_a_size(both, monkeypatch):
    train = [f"{both}/examples/Split-train/*"]
    in_memory = PipelineOptions([])
    assert batched_examples.may_hold(train, in_memory)
    assert not batched_examples.may_hold(train, PipelineOptions(["--direct_num_workers=2"]))
    size = sum(os.path.getsize(path) for path in glob.glob(train[0]))
    monkeypatch.setattr(batched_examples, "SHARED_READ_BYTES", size)
    assert batched_examples.may_hold(train, in_memory)
    monkeypatch.setattr(batched_examples, "SHARED_READ_BYTES", size - 1)
    assert not batched_examples.may_hold(train, in_memory)


KINDS = {"s": "bytes_list", "i": "int64_list", "f": "float_list", "other": "bytes_list"}


def _example(**features) -> bytes:
    """A tf.Example; a feature given None is present with no value list set (kind unset)."""
    example = tf.train.Example()
    for name, values in features.items():
        feature = example.features.feature[name]
        if values is not None:
            getattr(feature, KINDS[name]).SetInParent()
            getattr(feature, KINDS[name]).value.extend(values)
    return example.SerializeToString()


COLUMNS_SCHEMA = """
feature { name: "s" type: BYTES }
feature { name: "i" type: INT }
feature { name: "f" type: FLOAT }
"""


@pytest.mark.parametrize("columns", [("s", "i", "f"), ("i",), ()])
def test_columns_decoder_makes_tfx_bsls_record_batches(columns):
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = text_format.Parse(COLUMNS_SCHEMA, schema_pb2.Schema())
    kept = [f for f in schema.feature if f.name in columns]
    del schema.feature[:]
    schema.feature.extend(kept)
    schema.tensor_representation_group[""].SetInParent()  # as a TFXIO's projection leaves it
    records = [
        _example(s=[b"a"], i=[1], f=[1.5], other=[b"x"]),
        _example(),  # every feature absent: nulls
        _example(s=[], i=[], f=[]),  # present, empty: empty lists
        _example(s=None, i=None, f=None),  # present, no kind: nulls
        _example(s=[b"a", b"bc"], i=[1, -2, 3]),  # several values; f absent
        _example(s=[b""], i=[0], f=[float("nan")]),
    ] * 3
    schema_bytes = schema.SerializeToString()
    assert batched_examples.ColumnsDecoder.applies(schema_bytes)
    ours = batched_examples.ColumnsDecoder(schema_bytes).DecodeBatch(records)
    theirs = example_coder.ExamplesToRecordBatchDecoder(schema_bytes).DecodeBatch(records)
    assert ours.num_rows == theirs.num_rows == len(records)
    assert ours.schema.equals(theirs.schema)
    # Values, nulls and empty lists alike (compared as text: Arrow's equality holds NaN unequal to itself).
    assert repr(ours.to_pydict()) == repr(theirs.to_pydict())
    if columns:
        assert theirs.column(0).null_count == 6  # the absent and kind-less rows: nulls, as tfx_bsl makes them
    # A value of another type than the schema's fails both.
    if "i" in columns:
        example = tf.train.Example()
        example.features.feature["i"].float_list.value.append(1.0)
        wrong = [_example(i=[1]), example.SerializeToString()]
        with pytest.raises(Exception):  # noqa: B017 (tfx_bsl and TensorFlow raise their own errors)
            example_coder.ExamplesToRecordBatchDecoder(schema_bytes).DecodeBatch(wrong)
        with pytest.raises(tf.errors.InvalidArgumentError):
            batched_examples.ColumnsDecoder(schema_bytes).DecodeBatch(wrong)


def test_columns_decoder_leaves_other_schemas_to_tfx_bsl():
    from tensorflow_metadata.proto.v0 import schema_pb2

    sparse = schema_pb2.Schema()
    sparse.sparse_feature.add(name="x")
    assert not batched_examples.ColumnsDecoder.applies(sparse.SerializeToString())
    assert not batched_examples.ColumnsDecoder.applies(None)
