"""The C++ CSV ExampleGen executor writes exactly what TFX's CsvExampleGen executor writes: the same
tf.Examples in the same splits, on a CSV with every kind of cell, the column types decided over blocks."""

from __future__ import annotations

import glob
import itertools
import random

import pytest
import tensorflow as tf
from tfx.components.example_gen import base_example_gen_executor
from tfx.components.example_gen.csv_example_gen import executor as tfx_csv
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components import csv_example_gen

HEADER = "count,ratio,name,note,late_float,empty,late_text\n"


def tricky_csv(rows: int) -> str:
    """Integers, negatives, floats, strings with commas, quotes and newlines, empty cells, "NA" (a string
    to TFX), an all-empty column, and columns whose type only shows after many rows."""
    lines = [HEADER]
    for i in range(rows):
        count = "" if i % 7 == 0 else str(i - 50)
        ratio = "" if i % 11 == 0 else f"{i / 3:.4f}"
        name = ["plain", '"with, comma"', '"two\nlines"', "NA", '"say ""hi"""'][i % 5]
        note = "" if i % 3 else f"n{i}"
        late_float = str(i) if i < rows - 5 else f"{i}.5"  # integers until the last rows
        late_text = str(i) if i < rows - 3 else "x"
        lines.append(f"{count},{ratio},{name},{note},{late_float},,{late_text}\n")
    return "".join(lines)


def run_executor(
    executor, data_dir, output_dir, labels=(), artifact=None, dates=None
) -> dict[str, list[bytes]]:
    examples = artifact or standard_artifacts.Examples()
    examples.uri = str(output_dir)
    splits = [
        example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=2),
        example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=1),
    ]
    executor.Do(
        {},
        {"examples": [examples]},
        {
            "input_base": str(data_dir),
            "input_config": proto_utils.proto_to_json(
                example_gen_pb2.Input(splits=[example_gen_pb2.Input.Split(name="all", pattern="*.csv")])
            ),
            "output_config": proto_utils.proto_to_json(
                example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=splits))
            ),
            "output_data_format": example_gen_pb2.FORMAT_TF_EXAMPLE,
            "output_file_format": example_gen_pb2.FORMAT_TFRECORDS_GZIP,
            **(
                {
                    "custom_config": proto_utils.proto_to_json(
                        csv_example_gen.example_gen_config(labels, dates)
                    )
                }
                if labels or dates
                else {}
            ),
        },
    )
    return {
        split: sorted(
            tf.train.Example.FromString(record.numpy()).SerializeToString(deterministic=True)
            for record in tf.data.TFRecordDataset(
                glob.glob(f"{output_dir}/Split-{split}/*"), compression_type="GZIP"
            )
        )
        for split in ("train", "eval")
    }


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    root = tmp_path_factory.mktemp("csv_example_gen")
    (root / "data").mkdir()
    (root / "data" / "a.csv").write_text(tricky_csv(300))
    (root / "data" / "b.csv").write_text(tricky_csv(40))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(csv_example_gen, "BLOCK_BYTES", 1024)  # many blocks: types must hold across them
        ours = run_executor(csv_example_gen.Executor(), root / "data", root / "ours")
    return run_executor(tfx_csv.Executor(), root / "data", root / "tfx"), ours


def test_the_same_examples_in_the_same_splits_as_tfx(both):
    tfx_examples, ours = both
    assert sum(len(records) for records in ours.values()) == 340
    assert ours == tfx_examples


def test_cell_values_and_inferred_types(both):
    _, ours = both
    examples = [tf.train.Example.FromString(r) for split in ours.values() for r in split]
    by_count = {
        e.features.feature["count"].int64_list.value[0]: e.features.feature
        for e in examples
        if e.features.feature["count"].int64_list.value
    }
    row = by_count[2 - 50]  # row 2 of either file
    assert row["name"].bytes_list.value == [b"two\nlines"]
    assert by_count[3 - 50]["name"].bytes_list.value == [b"NA"]
    assert by_count[1 - 50]["name"].bytes_list.value == [b"with, comma"]
    assert by_count[4 - 50]["name"].bytes_list.value == [b'say "hi"']
    assert row["late_float"].float_list.value == [2.0]
    assert row["late_text"].bytes_list.value == [b"2"]
    assert row["ratio"].float_list.value == pytest.approx([2 / 3], abs=1e-4)
    assert not row["empty"].HasField("kind")
    empty_count = [e for e in examples if not e.features.feature["count"].int64_list.value]
    assert len(empty_count) == len(range(0, 300, 7)) + len(range(0, 40, 7))
    assert all(e.features.feature["count"].HasField("int64_list") for e in empty_count)


def test_a_split_without_files_is_an_error(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(RuntimeError, match=r"does not match any files"):
        run_executor(csv_example_gen.Executor(), tmp_path / "data", tmp_path / "out")


def written_order(output_dir) -> list[bytes]:
    files = sorted(glob.glob(f"{output_dir}/Split-train/*"))
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def test_examples_are_shuffled_the_same_way_every_time(both, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.csv").write_text(tricky_csv(300))
    for name in ("first", "second"):
        run_executor(csv_example_gen.Executor(), tmp_path / "data", tmp_path / name)
    first = written_order(tmp_path / "first")
    assert first == written_order(tmp_path / "second")
    counts = [
        tf.train.Example.FromString(r).features.feature["late_float"].float_list.value[0] for r in first
    ]
    assert counts != sorted(counts)  # not in the file's order


def test_examples_are_written_as_their_deterministic_serialization(tmp_path):
    """The split is a hash of each example's deterministic serialization (features sorted by name), built
    column-wise: the same bytes as protobuf's own, whatever the names' and values' lengths (varint headers
    of 1, 2 and 3 bytes), empty cells and columns without any value."""
    long_name = "a_feature_named_at_length_" + "x" * 140
    header = f"zeta,{long_name},alpha,ü_name,empty\n"
    rows = [
        f"{i},{'v' * (i * 997 % 20_000)},{i / 7:.3f},{'' if i % 3 else 'é' * (i % 200)},\n" for i in range(60)
    ]
    path = tmp_path / "wide.csv"
    path.write_text(header + "".join(rows))
    types = csv_example_gen.infer_column_types([str(path)], csv_example_gen.csv_header(str(path)))
    assert types["empty"] is None
    records = [record for block in csv_example_gen.example_blocks(str(path), types) for record in block]
    assert len(records) == 60
    for record in records:
        assert record == tf.train.Example.FromString(record).SerializeToString(deterministic=True)
    longest = tf.train.Example.FromString(max(records, key=len))
    assert len(longest.features.feature[long_name].bytes_list.value[0]) > 16_384


@pytest.mark.parametrize(
    "hash_buckets",
    [[2, 1], [1], [10, 40, 30], [700_001, 300_002], [(1 << 32) - 1] * 3],
)
def test_a_block_is_split_as_tfx_splits_each_example(hash_buckets):
    """A block's split indices, computed at once, are TFX's `_PartitionFn` of each record, whatever the
    number and sizes of the buckets (up to the most a split may have, 2**32 - 1)."""
    rng = random.Random(0)
    records = [b""] + [rng.randbytes(rng.randrange(1, 300)) for _ in range(3000)]
    split = example_gen_pb2.SplitConfig.Split
    splits = [split(name=f"s{i}", hash_buckets=n) for i, n in enumerate(hash_buckets)]
    config = example_gen_pb2.SplitConfig(splits=splits)
    buckets = list(itertools.accumulate(hash_buckets))
    tfx_indices = [base_example_gen_executor._PartitionFn(r, len(buckets), buckets, config) for r in records]
    assert csv_example_gen.split_indices(records, buckets, config).tolist() == tfx_indices
    assert len(set(tfx_indices)) == len(hash_buckets)  # every split drawn
    assert csv_example_gen.split_indices([], buckets, config).tolist() == []


def test_rows_without_a_label_are_left_out_and_counted(tmp_path):
    """With a label column, its empty cells' rows are not examples: the rest is exactly what TFX's executor
    writes from the same table without those rows, and the artifact records how many were read and left
    out."""
    (tmp_path / "data").mkdir()
    (tmp_path / "labelled").mkdir()
    table = tricky_csv(300)
    (tmp_path / "data" / "a.csv").write_text(table)
    # "count" is empty on every 7th row: 43 of 300.
    header, *rows = table.split("\n")[:-1]
    records, record = [], ""
    for line in rows:  # quoted newlines: a record ends where its quotes balance
        record = f"{record}\n{line}" if record else line
        if record.count('"') % 2 == 0:
            records.append(record)
            record = ""
    kept = [r for r in records if not r.startswith(",")]
    assert len(records) - len(kept) == 43
    (tmp_path / "labelled" / "a.csv").write_text("\n".join([header, *kept]) + "\n")
    examples = standard_artifacts.Examples()
    ours = run_executor(
        csv_example_gen.Executor(), tmp_path / "data", tmp_path / "ours", ("count",), examples
    )
    assert ours == run_executor(tfx_csv.Executor(), tmp_path / "labelled", tmp_path / "tfx")
    assert examples.get_int_custom_property(csv_example_gen.ROWS_READ) == 300
    assert examples.get_int_custom_property(csv_example_gen.UNLABELLED_ROWS) == 43
    assert examples.get_string_custom_property(csv_example_gen.LABELS) == '["count"]'
    # Without labels (the inference data) every row is an example.
    every = run_executor(csv_example_gen.Executor(), tmp_path / "data", tmp_path / "all")
    assert sum(map(len, every.values())) == 300
