"""A CsvExampleGen executor that parses and encodes in C++ and moves examples in blocks: the same
tf.Examples in the same splits as TFX's, several times faster on large files.

TFX's CsvExampleGen parses every cell and builds every tf.train.Example in Python, then reshuffles and
writes every example as its own Beam element: 145 s of a 1M-row data stage here. This executor reads the
CSV files with pyarrow's CSV reader in blocks, serializes each block with tfx_bsl's RecordBatch-to-tf.Example
encoder, assigns each example its split with TFX's own hash, shuffles each block's examples (seeded, so a
re-run writes the same order) and writes them with TensorFlow's TFRecord writer: Beam moves one element per
block of about 100,000 rows, and blocks spread over the workers.

The examples are what CsvExampleGen writes: a column is INT when every value parses as an integer, else
FLOAT when every value parses as a number, else BYTES (the type is decided over all the split's files,
before any example is written); an empty cell is the feature with an empty value list; quoted values may
hold commas and newlines. Only empty cells are missing values ("NA" stays a string, as TFX reads it). The
order differs: TFX shuffles across the whole split, this executor within each block (the Trainer's reader
interleaves the block files).

With label columns in its `custom_config` (example_gen_config), a row whose label cell is empty is left out: a
training or evaluation example needs its label, and one made up (Transform's 0 for a number, the
out-of-vocabulary class for a string) would be learnt from and scored against. The rows read and those left
out are counted (Beam counters) and recorded on the examples (ROWS_READ, UNLABELLED_ROWS, LABELS); the data
gate stops the run past the allowed share (components/data_gate.py). Without labels (the inference data),
every row is kept. The values of its date columns (the schema's `time_domain` formats) are read as
Transform's graph reads them (trainer_module/dates.py): those that are not dates are counted and a few kept
(INVALID_DATES), and the data gate and the inference gate refuse them.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import random
from collections.abc import Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from apache_beam.options.pipeline_options import PipelineOptions
from google.protobuf import struct_pb2
from tfx.components.example_gen import (
    base_example_gen_executor,
    driver,
    input_processor,
    utils,
    write_split,
)
from tfx.components.util import examples_utils
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2, range_config_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils
from tfx_bsl.coders import example_coder

from components.batched_examples import in_one_worker
from pipeline.storage.streams import native_file, open_binary

BLOCK_BYTES = 8 << 20  # pyarrow's read unit: 8 MiB of CSV, about 100,000 rows of the penguins table
HEADER_BYTES = 1 << 20  # what csv_header reads of a remote file: its header line must fit

# Narrowest first: a column takes the first type all of its values parse as.
_INFERRED = (pa.int64(), pa.float64(), pa.string())
# How each inferred type is written into tf.Examples: int64_list, float_list, bytes_list.
_FEATURE_TYPES = {pa.int64(): pa.int64(), pa.float64(): pa.float32(), pa.string(): pa.binary()}


def csv_reader(
    path: str, column_types: dict[str, pa.DataType], block_bytes: int | None = None, source=None
) -> pcsv.CSVStreamingReader:
    """A CSV file in record batches of about `block_bytes` (default BLOCK_BYTES), the columns of the given
    types; empty cells are nulls and quoted values may hold newlines. `source`: the file's bytes (a pyarrow
    file) when already at hand."""
    # Local files are read by pyarrow itself; others (gs://, s3://...) copied here first (native_file).
    return pcsv.open_csv(
        source or native_file(path),
        read_options=pcsv.ReadOptions(block_size=block_bytes or BLOCK_BYTES),
        parse_options=pcsv.ParseOptions(newlines_in_values=True),
        convert_options=pcsv.ConvertOptions(
            column_types=column_types, null_values=[""], strings_can_be_null=True
        ),
    )


def csv_header(path: str) -> list[str]:
    """The column names of a CSV file as the reader sees them: a UTF-8 byte order mark dropped, any line
    ending (LF, CRLF, CR), quoted names unquoted. Of a remote file, only its first MiB is read."""
    source = None
    if "://" in path:
        with open_binary(path) as stream:
            source = pa.BufferReader(stream.read(HEADER_BYTES))
    return csv_reader(path, {}, block_bytes=1 << 16, source=source).schema.names


def _parses_as(values: pa.Array, arrow_type: pa.DataType) -> bool:
    try:
        pc.cast(values, arrow_type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


def infer_column_types(paths: list[str], column_names: list[str]) -> dict[str, pa.DataType | None]:
    """The type of each column over every file: the narrowest of int64, float64, string that all of its
    non-empty values parse as; None for a column without any value (TFX gives it no type either)."""
    as_text = dict.fromkeys(column_names, pa.string())
    candidates = {name: 0 for name in column_names}  # index into _INFERRED
    has_values = dict.fromkeys(column_names, False)
    for path in paths:
        for batch in csv_reader(path, as_text):
            for name, column in zip(batch.schema.names, batch.columns, strict=True):
                values = column.drop_null()
                has_values[name] = has_values[name] or len(values) > 0
                while candidates[name] < len(_INFERRED) - 1 and not _parses_as(
                    values, _INFERRED[candidates[name]]
                ):
                    candidates[name] += 1
    return {name: _INFERRED[index] if has_values[name] else None for name, index in candidates.items()}


def as_feature_list(column: pa.Array, arrow_type: pa.DataType) -> pa.ListArray:
    """One list per row: the value, or an empty list for an empty cell."""
    present = pc.cast(pc.is_valid(column), pa.int32())
    offsets = pa.concat_arrays([pa.array([0], pa.int32()), pc.cumulative_sum(present)])
    return pa.ListArray.from_arrays(offsets, pc.cast(column.drop_null(), _FEATURE_TYPES[arrow_type]))


def missing_or_list(column: pa.Array, arrow_type: pa.DataType) -> pa.ListArray:
    """One list per row: the value, or no list (null) for an empty cell, as TFDV's CSV reader has it."""
    lists = as_feature_list(column, arrow_type)
    return pa.ListArray.from_arrays(lists.offsets, lists.values, mask=pc.is_null(column))


# The examples artifact's custom properties: the rows read, those left out for an empty label, the labels;
# and for each date column, its format and the values that are not dates of it (JSON).
ROWS_READ, UNLABELLED_ROWS, LABELS = "rows_read", "unlabelled_rows", "label_columns"
INVALID_DATES = "invalid_dates"
_COUNTERS = "CsvExampleGen"
_EXAMPLES_KEPT = 3  # invalid values of a date column kept to show, per block


def example_gen_config(labels=(), dates: dict[str, str] | None = None) -> example_gen_pb2.CustomConfig:
    """ExampleGen's `custom_config`: the label columns whose empty cells leave a row out, and the date columns
    (name -> format) whose values are checked."""
    config = example_gen_pb2.CustomConfig()
    struct = struct_pb2.Struct()
    struct.update({"labels": list(labels), **({"dates": dict(dates)} if dates else {})})
    config.custom_config.Pack(struct)
    return config


def configured_columns(exec_properties: dict) -> tuple[list[str], dict[str, str]]:
    """(label columns, date column -> format) of ExampleGen's `custom_config` (example_gen_config)."""
    text = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
    if not text:
        return [], {}
    struct = struct_pb2.Struct()
    proto_utils.json_to_proto(text, example_gen_pb2.CustomConfig()).custom_config.Unpack(struct)
    labels = [str(label) for label in struct["labels"]] if "labels" in struct else []
    dates = {str(name): str(fmt) for name, fmt in struct["dates"].items()} if "dates" in struct else {}
    return labels, dates


def record_counts(artifact, unlabelled: int, rows: int, labels: list[str]) -> None:
    """The rows left out for an empty label, the rows read and the labels, as the artifact's custom
    properties (on the examples, and carried by StatisticsGen onto the statistics)."""
    artifact.set_int_custom_property(UNLABELLED_ROWS, unlabelled)
    artifact.set_int_custom_property(ROWS_READ, rows)
    artifact.set_string_custom_property(LABELS, json.dumps(labels))


def recorded_counts(artifact) -> tuple[int, int, list[str]] | None:
    """(rows left out for an empty label, rows read, label columns) as record_counts recorded them on the
    artifact; None where nothing was counted (image data)."""
    if not artifact.has_custom_property(ROWS_READ):
        return None
    return (
        artifact.get_int_custom_property(UNLABELLED_ROWS),
        artifact.get_int_custom_property(ROWS_READ),
        json.loads(artifact.get_string_custom_property(LABELS)),
    )


def record_invalid_dates(artifact, found: dict[str, dict]) -> None:
    """Date column -> {"format", "count" of values that are not dates of it, "examples" of them}."""
    artifact.set_string_custom_property(INVALID_DATES, json.dumps(found, sort_keys=True))


def recorded_invalid_dates(artifact) -> dict[str, dict]:
    """What record_invalid_dates recorded on the artifact: {} where no date column was checked."""
    if not artifact.has_custom_property(INVALID_DATES):
        return {}
    return json.loads(artifact.get_string_custom_property(INVALID_DATES))


def carry_counts(source, target) -> None:
    """ExampleGen's counts and checks, copied from its examples onto an artifact made from them."""
    counts = recorded_counts(source)
    if counts:
        record_counts(target, *counts)
    if source.has_custom_property(INVALID_DATES):
        record_invalid_dates(target, recorded_invalid_dates(source))


def invalid_dates_note(found: dict[str, dict]) -> str:
    """One line naming every date column with values that are not dates of its format ("" when none)."""
    return "; ".join(
        f"{name}: {checked['count']:,} value(s) are not dates or times of the format {checked['format']} "
        f"(e.g. {', '.join(repr(v) for v in checked['examples'])})"
        for name, checked in sorted(found.items())
        if checked["count"]
    )


def unlabelled_note(unlabelled: int, rows: int, labels: list[str]) -> str:
    """One line naming the rows left out for an empty label, e.g. "8 of 406 rows have no mpg: ..."."""
    return (
        f"{unlabelled:,} of {rows:,} rows have no {' or '.join(labels)}: not used for training or evaluation"
    )


def example_blocks(
    path: str,
    column_types: dict[str, pa.DataType | None],
    labels: tuple[str, ...] = (),
    dates: dict[str, str] | None = None,
) -> Iterator[list[bytes]]:
    """The tf.Examples of one CSV file, serialized, a list per block of the file; with `labels`, the rows
    whose label cells are all filled in (counted in Beam counters where Beam runs it); the values of the
    `dates` columns (name -> format) that are not dates of their format counted, a few kept."""
    encoder = example_coder.RecordBatchToExamplesEncoder()
    read_types = {name: arrow_type or pa.string() for name, arrow_type in column_types.items()}
    for batch in csv_reader(path, read_types):
        if labels:
            rows = batch.num_rows
            batch = batch.filter(functools.reduce(pc.and_, [pc.is_valid(batch.column(n)) for n in labels]))
            beam.metrics.Metrics.counter(_COUNTERS, ROWS_READ).inc(rows)
            beam.metrics.Metrics.counter(_COUNTERS, UNLABELLED_ROWS).inc(rows - batch.num_rows)
        for name, fmt in (dates or {}).items():
            _check_dates(name, fmt, batch.column(name))
        entries = [
            _untyped_entries(name, batch.num_rows)
            if column_types[name] is None
            else _feature_entries(encoder, name, as_feature_list(batch.column(name), read_types[name]))
            for name in sorted(batch.schema.names)
        ]
        yield _with_length_prefix(pc.binary_join_element_wise(*entries, _NO_SEPARATOR)).to_pylist()


def _check_dates(name: str, fmt: str, column: pa.Array) -> None:
    """Counts the values of date column `name` that are not dates of `fmt` as Beam counts ExampleGen's
    rows, keeping a few, read in the graph as Transform and the served model read them."""
    from trainer_module.dates import invalid_dates

    values = column.cast(pa.string()).to_pylist()
    invalid = invalid_dates(values, fmt) if values else []
    beam.metrics.Metrics.counter(_COUNTERS, f"{INVALID_DATES}:{name}").inc(len(invalid))
    for row in invalid[:_EXAMPLES_KEPT]:
        beam.metrics.Metrics.string_set(_COUNTERS, f"{INVALID_DATES}:{name}").add(values[row])


# Deterministic serialization, column-wise. TFX's split is a hash of `SerializeToString(deterministic=True)`,
# which writes the features map's entries sorted by name; tfx_bsl's encoder writes them in hash order. A
# tf.Example is `0x0a varint(n) <features>` and its features are the concatenation of one map entry per
# feature (`0x0a varint(m) <name, value>`), so the sorted bytes are built from one single-column encoding per
# feature, with numpy and pyarrow's kernels: the same bytes as parsing and re-serializing each example
# (tested), without a Python step per example.
_NO_SEPARATOR = pa.scalar(b"", pa.large_binary())


def _varint_sizes(values: np.ndarray) -> np.ndarray:
    sizes = np.ones(len(values), np.int64)
    for bits in (7, 14, 21, 28):
        sizes += values >= (1 << bits)
    return sizes


def _feature_entries(encoder, name: str, lists: pa.ListArray) -> pa.Array:
    """Each row's map entry for feature `name`: its one-feature example without the example's header."""
    encoded = pa.array(encoder.encode(pa.RecordBatch.from_arrays([lists], [name])), pa.large_binary())
    offsets = np.frombuffer(encoded.buffers()[1], np.int64)[: len(encoded) + 1]
    total = np.diff(offsets)
    # total = 1 + varint_size(n) + n: the header's size is the k for which n = total - 1 - k needs k bytes.
    header = np.zeros(len(total), np.int64)
    for k in (5, 4, 3, 2, 1):
        header = np.where(_varint_sizes(total - 1 - k) == k, 1 + k, header)
    dropped = (
        np.repeat(offsets[:-1], header)
        + np.arange(header.sum())
        - np.repeat(np.cumsum(header) - header, header)
    )
    keep = np.ones(offsets[-1], bool)
    keep[dropped] = False
    data = np.frombuffer(encoded.buffers()[2], np.uint8)[: offsets[-1]][keep]
    new_offsets = offsets - np.concatenate([[0], np.cumsum(header)])
    return pa.Array.from_buffers(
        pa.large_binary(), len(total), [None, pa.py_buffer(new_offsets), pa.py_buffer(data.tobytes())]
    )


def _untyped_entries(name: str, rows: int) -> pa.Array:
    """The map entry of a column without any value: the feature with no value list, as TFX writes it."""
    key_field = _with_length_prefix(pa.array([name.encode()], pa.large_binary()))[0].as_py()
    entry = _with_length_prefix(pa.array([key_field + b"\x12\x00"], pa.large_binary()))[0].as_py()
    return pa.repeat(pa.scalar(entry, pa.large_binary()), rows)


def _with_length_prefix(bodies: pa.Array) -> pa.Array:
    """`0x0a varint(len(value)) value` for each value: field 1, length-delimited (Example.features,
    Features.feature, a map entry's key)."""
    lengths = pc.binary_length(bodies).to_numpy(zero_copy_only=False).astype(np.int64)
    sizes = _varint_sizes(lengths)
    offsets = np.concatenate([[0], np.cumsum(1 + sizes)])
    data = np.zeros(offsets[-1], np.uint8)
    data[offsets[:-1]] = 0x0A
    for j in range(int(sizes.max(initial=1))):
        rows = sizes > j
        more = sizes[rows] > j + 1
        data[offsets[:-1][rows] + 1 + j] = ((lengths[rows] >> (7 * j)) & 0x7F) | np.where(more, 0x80, 0)
    headers = pa.Array.from_buffers(
        pa.large_binary(), len(lengths), [None, pa.py_buffer(offsets), pa.py_buffer(data.tobytes())]
    )
    return pc.binary_join_element_wise(headers, bodies, _NO_SEPARATOR)


def serialized_examples(
    path: str, column_types: dict[str, pa.DataType | None], labels: tuple[str, ...] = (), dates=None
) -> Iterator[bytes]:
    """The tf.Examples of one CSV file, serialized, one by one."""
    for block in example_blocks(path, column_types, labels, dates):
        yield from block


def _split_columns(exec_properties: dict, split_pattern: str) -> tuple[list[str], dict]:
    """The split's files, and its column types decided over all of them."""
    pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], split_pattern)
    paths = sorted(fileio.glob(pattern))
    if not paths:
        raise RuntimeError(f"Split pattern {pattern} does not match any files.")
    column_names = csv_header(paths[0])
    for path in paths[1:]:
        if csv_header(path) != column_names:
            raise RuntimeError(f"Files in same split {pattern} have different header.")
    return paths, infer_column_types(paths, column_names)


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(bytes)
def _CsvToSerializedExamples(pipeline: beam.Pipeline, exec_properties: dict, split_pattern: str):  # noqa: N802
    paths, column_types = _split_columns(exec_properties, split_pattern)
    labels, dates = configured_columns(exec_properties)
    return (
        pipeline
        | "CsvFiles" >> beam.Create(paths)
        | "ReadAndEncode" >> beam.FlatMap(serialized_examples, column_types, tuple(labels), dates)
    )


def split_indices(records: list[bytes], buckets: list[int], split_config) -> np.ndarray:
    """The split of each record, as TFX's `_PartitionFn` assigns it, for a block of records at once: the
    SHA-256 of the record's bytes read as a big-endian integer, modulo the total of the hash buckets, then
    the split whose cumulative buckets (`buckets`) first exceed it."""
    total = buckets[-1]
    if split_config.HasField("partition_feature_name"):
        return np.array(
            [
                base_example_gen_executor._PartitionFn(record, len(buckets), buckets, split_config)  # noqa: SLF001
                for record in records
            ],
            np.int64,
        )
    digests = np.frombuffer(b"".join(hashlib.sha256(record).digest() for record in records), np.uint8)
    # sum(byte_i * 256**(31 - i)) % total with each power reduced first: within int64 up to 2**50 buckets
    # (each split's are a uint32: 2**18 splits).
    weights = np.array([pow(256, 31 - i, total) for i in range(32)], np.int64)
    bucket = (digests.reshape(-1, 32).astype(np.int64) @ weights) % total
    return np.searchsorted(buckets, bucket, side="right")


class _WriteBlock(beam.DoFn):
    """Writes one block's examples, split by TFX's hash and shuffled, as one gzipped TFRecord file per
    split: `<split dir>/data_tfrecord-<file>-<block>.gz` (a retried bundle rewrites the same files)."""

    def __init__(self, split_uris: list[str], buckets: list[int], split_config):
        self._split_uris = split_uris
        self._buckets = buckets
        self._split_config = split_config

    def process(self, keyed_block: tuple[str, list[bytes]]) -> None:
        import tensorflow as tf

        block_id, records = keyed_block
        indices = split_indices(records, self._buckets, self._split_config)
        for index, split_uri in enumerate(self._split_uris):
            split_records = [records[i] for i in np.flatnonzero(indices == index)]
            random.Random(f"{block_id}-{index}").shuffle(split_records)
            with tf.io.TFRecordWriter(
                os.path.join(split_uri, f"data_tfrecord-{block_id}.gz"), options="GZIP"
            ) as writer:
                for record in split_records:
                    writer.write(record)


def _keyed_blocks(
    indexed_path: tuple[int, str], column_types: dict, labels: tuple[str, ...] = (), dates=None
) -> Iterator[tuple[str, list[bytes]]]:
    file_index, path = indexed_path
    for block_index, block in enumerate(example_blocks(path, column_types, labels, dates)):
        yield f"{file_index:05d}-{block_index:05d}", block


_SPAN_SPECS = (utils.SPAN_SPEC, utils.VERSION_SPEC, *utils.DATE_SPECS, "{SPAN:", "{VERSION:")


def resolve_spans(exec_properties: dict, output_dict: dict) -> dict:
    """`exec_properties` with split patterns such as `span-{SPAN}/*` resolved to the span ExampleGen reads
    (the newest, or the configured range), and the span, version and input fingerprint recorded on the
    examples, as TFX's ExampleGen driver does before the executor runs.

    LocalDagRunner and Vertex AI (the spec's `preCacheCheck`) run that driver, so the patterns arrive
    resolved and nothing changes; self-hosted Kubeflow Pipelines never runs it, and without this the
    executor would look for files named `span-{SPAN}`."""
    input_config = proto_utils.json_to_proto(
        exec_properties[standard_component_specs.INPUT_CONFIG_KEY], example_gen_pb2.Input()
    )
    if not any(spec in split.pattern for split in input_config.splits for spec in _SPAN_SPECS):
        return exec_properties
    range_config = None
    if exec_properties.get(standard_component_specs.RANGE_CONFIG_KEY):
        range_config = proto_utils.json_to_proto(
            exec_properties[standard_component_specs.RANGE_CONFIG_KEY], range_config_pb2.RangeConfig()
        )
    processor = input_processor.FileBasedInputProcessor(
        exec_properties[standard_component_specs.INPUT_BASE_KEY], input_config.splits, range_config
    )
    span, version = processor.resolve_span_and_version()
    for split in input_config.splits:
        split.pattern = processor.get_pattern_for_span_version(split.pattern, span, version)
    resolved = {
        **exec_properties,
        standard_component_specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(input_config),
        utils.SPAN_PROPERTY_NAME: span,
        utils.VERSION_PROPERTY_NAME: version,
        utils.FINGERPRINT_PROPERTY_NAME: processor.get_input_fingerprint(span, version),
    }
    examples = artifact_utils.get_single_instance(output_dict[standard_component_specs.EXAMPLES_KEY])
    driver.update_output_artifact(resolved, examples.mlmd_artifact)
    return resolved


def _metrics(result) -> tuple[dict[str, int], dict[str, set[str]]]:
    """This executor's Beam counters and string sets: committed where the runner reports them, else
    attempted."""
    found = result.metrics().query(beam.metrics.MetricsFilter().with_namespace(_COUNTERS))

    def value(metric):
        return metric.committed if metric.committed is not None else metric.attempted

    return (
        {counter.key.metric.name: int(value(counter)) for counter in found["counters"]},
        {kept.key.metric.name: set(value(kept)) for kept in found.get("string_sets", [])},
    )


def checked_dates(result, dates: dict[str, str]) -> dict[str, dict]:
    """Date column -> its format, the number of values that are not dates of it and a few of them."""
    counts, kept = _metrics(result)
    return {
        name: {
            "format": fmt,
            "count": counts.get(f"{INVALID_DATES}:{name}", 0),
            "examples": sorted(kept.get(f"{INVALID_DATES}:{name}", ()))[:_EXAMPLES_KEPT],
        }
        for name, fmt in dates.items()
    }


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
    """CsvExampleGen's executor with C++ parsing and encoding (module docstring).

    With output splits (the usual 2:1 hash split), examples travel through Beam a block at a time: each
    block's examples are assigned their split by TFX's hash, shuffled within the block (seeded) and written
    in C++, one file per block and split. TFX's executor instead moves, reshuffles and writes every example
    as a Beam element, which costs most of its time on a million rows. With input-defined splits, TFX's
    per-example path."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:  # noqa: N802
        return _CsvToSerializedExamples

    def Do(self, input_dict, output_dict, exec_properties) -> None:  # noqa: N802
        exec_properties = resolve_spans(exec_properties, output_dict)
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        output_config = example_gen_pb2.Output()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config)
        splits = output_config.split_config.splits
        if not splits or len(input_config.splits) != 1:
            return super().Do(input_dict, output_dict, exec_properties)

        self._log_startup(input_dict, output_dict, exec_properties)
        outputs = output_dict[standard_component_specs.EXAMPLES_KEY]
        examples = artifact_utils.get_single_instance(outputs)
        examples.split_names = artifact_utils.encode_split_names([split.name for split in splits])
        split_uris = [artifact_utils.get_split_uri(outputs, split.name) for split in splits]
        for uri in split_uris:
            fileio.makedirs(uri)
        buckets = list(itertools.accumulate(split.hash_buckets for split in splits))
        write = _WriteBlock(split_uris, buckets, output_config.split_config)
        paths, column_types = _split_columns(exec_properties, input_config.splits[0].pattern)
        labels, dates = configured_columns(exec_properties)
        missing = sorted(set(labels) - set(column_types))
        if missing:
            raise RuntimeError(f"the data has no label column {', '.join(missing)}")
        # A date column the data lacks is the data gate's anomaly (a feature missing), not a check here.
        dates = {name: fmt for name, fmt in dates.items() if name in column_types}
        with self._make_beam_pipeline() as pipeline:
            blocks = (
                pipeline
                | "CsvFiles" >> beam.Create(list(enumerate(paths)))
                | "ReadAndEncode" >> beam.FlatMap(_keyed_blocks, column_types, tuple(labels), dates)
            )
            if not in_one_worker(PipelineOptions(self._beam_pipeline_args or [])):
                # Spreading the blocks over the workers is a shuffle: the runner holds every block first. In
                # one worker each block goes from reading to writing without being held.
                blocks |= "SpreadBlocks" >> beam.Reshuffle()
            _ = blocks | "SplitShuffleWrite" >> beam.ParDo(write)
        if labels:
            counts, _ = _metrics(pipeline.result)
            record_counts(examples, counts.get(UNLABELLED_ROWS, 0), counts.get(ROWS_READ, 0), labels)
        if dates:
            record_invalid_dates(examples, checked_dates(pipeline.result, dates))
        payload_format = exec_properties.get(standard_component_specs.OUTPUT_DATA_FORMAT_KEY)
        if payload_format:
            examples_utils.set_payload_format(examples, payload_format)
        file_format = exec_properties.get(
            standard_component_specs.OUTPUT_FILE_FORMAT_KEY, example_gen_pb2.FILE_FORMAT_UNSPECIFIED
        )
        examples_utils.set_file_format(examples, write_split.to_file_format_str(file_format))
