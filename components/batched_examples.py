"""tf.Examples read and written by the batch in Beam pipelines: TensorFlow's TFRecord reader and TFRecord
framing where TFX's components use Beam's TFRecord source and sink, which move each example as a Beam
element of its own (in Python: 8 µs an example read here, bench/RESULTS.md).

`BatchedExampleRecord` is tfx_bsl's TFXIO of tf.Examples in TFRecord files with a Beam source that reads
each file with TensorFlow's reader, 1,000 examples at a time (tfx_bsl's batch cap, the most TFX's own
batching gives), and decodes each batch with the decoder TFX uses: one element per batch, the files spread
over the workers where there are several (a GZIP'd file cannot be split, so Beam's source reads each in one
piece too); in one worker the files are read in order. Left out:
tfx_bsl's telemetry counters of raw records and record batches (Beam metrics that no step reads).

`BatchedTFRecordSink` is Beam's file sink for elements that are lists of records: each list framed as
TensorFlow frames TFRecords (length, masked CRC-32C of the length, data, masked CRC-32C of the data) into
one write of the (GZIP'd) file. Beam's sink machinery is kept: temporary files that only a finished bundle
renames into place, named as Beam names them.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import apache_beam as beam
import google_crc32c
import numpy as np
import pyarrow as pa
import tensorflow as tf
from apache_beam import coders
from apache_beam.io import filebasedsink
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.dsl.io import fileio
from tfx_bsl.coders import batch_util, example_coder
from tfx_bsl.tfxio import record_based_tfxio, tf_example_record
from tfx_bsl.tfxio.tfxio import TFXIO

# At most this much of (GZIP'd) example files is read once for two readers. The train split of the penguins
# table's 1M rows is 14 MB of files, and holding its batches added about 200 MB to the data stage's peak
# (bench/RESULTS.md): at this bound about 1 GB; beyond it each reader reads the files.
SHARED_READ_BYTES = 64 << 20


def in_one_worker(options: PipelineOptions) -> bool:
    """Whether Beam runs a pipeline of these options in one worker (the DirectRunner, in_memory or with one
    worker process), where what a step's output holds until the next step reads it stays in memory."""
    runner = options.view_as(StandardOptions).runner
    direct = options.view_as(DirectOptions)
    return runner in (None, "DirectRunner", "direct") and direct.direct_num_workers == 1  # 0: one per core


def may_hold(file_patterns: list[str], options: PipelineOptions) -> bool:
    """Whether a pipeline of these options may hold what it read of these files for a second reader: in one
    worker, and files of at most SHARED_READ_BYTES (their decoded batches take several times that)."""
    if not in_one_worker(options):
        return False
    paths = [path for pattern in file_patterns for path in fileio.glob(pattern)]
    return sum(fileio.stat(path).length for path in paths) <= SHARED_READ_BYTES


def examples_per_batch(desired: int | None) -> int:
    """Examples per batch: the one asked for, else tfx_bsl's cap (its batching tunes up to it)."""
    return desired or batch_util.GetBatchElementsKwargs(None)["max_batch_size"]


def read_batches(path: str, size: int) -> Iterator[list[bytes]]:
    """The serialized records of one TFRecord file, `size` at a time, in file order; GZIP'd when its name
    ends in .gz (tfx_bsl's rule)."""
    compression = "GZIP" if path.endswith(".gz") else ""
    records = tf.data.TFRecordDataset(path, compression_type=compression).batch(size)
    for batch in records.as_numpy_iterator():
        yield list(batch)


_PARSED_TYPES = {schema_pb2.BYTES: tf.string, schema_pb2.INT: tf.int64, schema_pb2.FLOAT: tf.float32}


class ColumnsDecoder:
    """tf.Examples to the record batch of a schema's columns that tfx_bsl's ExamplesToRecordBatchDecoder
    makes of them, each column parsed by TensorFlow's example parser, which skips an example's other
    features (tfx_bsl's decoder parses every example whole: for one column of 333,000 penguins examples,
    2.0 s against 0.2 s). The parser cannot tell a feature absent from an example (tfx_bsl: null) from one
    with an empty value list (an empty list): the examples with an empty value in some column, rare, are
    decoded again by tfx_bsl's decoder for that. For schemas of plain features (`applies`), or of none (a
    reader that needs only the serialized examples: record batches of no column)."""

    def __init__(self, schema_bytes: bytes):
        schema = schema_pb2.Schema.FromString(schema_bytes)
        self._exact = example_coder.ExamplesToRecordBatchDecoder(schema_bytes)
        self._arrow_schema = self._exact.ArrowSchema()
        self._spec = {f.name: tf.io.VarLenFeature(_PARSED_TYPES[f.type]) for f in schema.feature}

    @staticmethod
    def applies(schema_bytes: bytes | None) -> bool:
        if schema_bytes is None:
            return False
        schema = schema_pb2.Schema.FromString(schema_bytes)
        plain = not (schema.sparse_feature or schema.weighted_feature)
        return plain and all(f.type in _PARSED_TYPES for f in schema.feature)

    def DecodeBatch(self, records: list[bytes]) -> pa.RecordBatch:  # noqa: N802 (tfx_bsl's name)
        if not self._spec:  # no column: only the number of rows
            rows = pa.StructArray.from_buffers(pa.struct([]), len(records), [None])
            return pa.RecordBatch.from_struct_array(rows)
        parsed = tf.io.parse_example(tf.constant(records, tf.string), self._spec)
        size = len(records)
        lengths = {
            name: np.bincount(value.indices[:, 0].numpy(), minlength=size) for name, value in parsed.items()
        }
        empty = np.nonzero(np.any([length == 0 for length in lengths.values()], axis=0))[0]
        exact = self._exact.DecodeBatch([records[i] for i in empty]) if len(empty) else None
        columns = []
        for field in self._arrow_schema:
            null = np.zeros(size + 1, bool)
            if exact is not None:
                null[empty] = exact.column(field.name).is_null().to_numpy(zero_copy_only=False)
            offsets = pa.array(np.concatenate([[0], np.cumsum(lengths[field.name])]), pa.int64(), mask=null)
            values = pa.array(parsed[field.name].values.numpy(), field.type.value_type)
            columns.append(pa.LargeListArray.from_arrays(offsets, values))
        return pa.RecordBatch.from_arrays(columns, schema=self._arrow_schema)


class _DecodeFile(beam.DoFn):
    """A file's examples as record batches of the schema's columns (plus the raw records, when asked);
    `parse_columns`: by ColumnsDecoder where it applies."""

    def __init__(self, schema_bytes: bytes | None, raw_record_column: str | None, size: int, parse_columns):
        self._schema_bytes = schema_bytes
        self._raw_record_column = raw_record_column
        self._size = size
        self._parse_columns = parse_columns

    def setup(self):
        if self._parse_columns and ColumnsDecoder.applies(self._schema_bytes):
            self._decoder = ColumnsDecoder(self._schema_bytes)
        else:
            self._decoder = example_coder.ExamplesToRecordBatchDecoder(self._schema_bytes)

    def process(self, path: str) -> Iterator[pa.RecordBatch]:
        for records in read_batches(path, self._size):
            decoded = self._decoder.DecodeBatch(records)
            if self._raw_record_column:
                decoded = record_based_tfxio.AppendRawRecordColumn(decoded, self._raw_record_column, records)
            yield decoded


class BatchedExampleRecord(tf_example_record.TFExampleRecord):
    """tfx_bsl's TFXIO of tf.Examples in TFRecord files, whose Beam source reads and decodes by the batch.

    `reads`, a dict that the TFXIOs of one pipeline share (projections included), lets a pipeline read the
    same files and columns once: where it runs in one worker and the files are small enough (`may_hold`), a
    second read of them takes the first read's batches, which the runner holds in memory until the second
    reader's step has run. Elsewhere each reads the files again (as TFX does, so that a distributed runner
    does not store the first read's output). `batch_size`: examples per batch where BeamSource is given
    none (default: tfx_bsl's cap); `parse_columns`: decoded by ColumnsDecoder, for a reader of a few
    columns."""

    def __init__(
        self, *args, reads: dict | None = None, batch_size: int | None = None, parse_columns=False, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self._reads = reads
        self._batch_size = batch_size
        self._parse_columns = parse_columns

    def BeamSource(self, batch_size: int | None = None) -> beam.PTransform:  # noqa: N802 (TFXIO's name)
        schema = self._GetSchemaForDecoding()
        schema_bytes = schema.SerializeToString() if schema is not None else None
        size = examples_per_batch(batch_size or self._batch_size)
        decode = _DecodeFile(schema_bytes, self.raw_record_column_name, size, self._parse_columns)
        columns = schema.SerializeToString(deterministic=True) if schema is not None else None
        read = (tuple(self._file_pattern), columns, self.raw_record_column_name, size)

        @beam.ptransform_fn
        def source(pipeline):
            shared = self._reads is not None and may_hold(self._file_pattern, pipeline.pipeline.options)
            key = (pipeline.pipeline, read)
            if shared and key in self._reads:
                return self._reads[key] | "ReadBefore" >> beam.Map(lambda batch: batch)
            files = (
                pipeline
                | "Patterns" >> beam.Create(self._file_pattern)
                | "Files" >> beam.FlatMap(lambda pattern: sorted(fileio.glob(pattern)))
            )
            if not in_one_worker(pipeline.pipeline.options):
                files |= "SpreadFiles" >> beam.Reshuffle()
            batches = files | "ReadAndDecode" >> beam.ParDo(decode)
            if shared:
                self._reads[key] = batches
            return batches

        return source()

    def _ProjectImpl(self, tensor_names):  # noqa: N802 (TFXIO's name)
        projected = super()._ProjectImpl(tensor_names)
        return batched(projected, self._reads, self._batch_size, self._parse_columns)


def batched(
    tfxio: TFXIO, reads: dict | None = None, batch_size: int | None = None, parse_columns: bool = False
) -> TFXIO:
    """`tfxio` read by the batch where it is tfx_bsl's TFXIO of tf.Examples in TFRecord files (reads shared
    through `reads`, `batch_size` and `parse_columns` as BatchedExampleRecord takes them); any other format
    or payload as it is."""
    if type(tfxio) is not tf_example_record.TFExampleRecord:
        return tfxio
    return BatchedExampleRecord(
        file_pattern=tfxio._file_pattern,
        schema=tfxio._schema,
        raw_record_column_name=tfxio.raw_record_column_name,
        telemetry_descriptors=tfxio.telemetry_descriptors,
        reads=reads,
        batch_size=batch_size,
        parse_columns=parse_columns,
    )


def _masked_crc(data: bytes) -> bytes:
    crc = google_crc32c.value(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def tfrecords(records: list[bytes]) -> bytes:
    """`records` framed as TFRecord's format frames each record, concatenated."""
    framed = []
    for record in records:
        length = struct.pack("<Q", len(record))
        framed += (length, _masked_crc(length), record, _masked_crc(record))
    return b"".join(framed)


class BatchedTFRecordSink(filebasedsink.FileBasedSink):
    """Beam's file sink whose elements are lists of records, each list framed into one write."""

    def __init__(self, file_path_prefix: str, file_name_suffix: str):
        super().__init__(
            file_path_prefix,
            coder=coders.BytesCoder(),  # unused: write_record takes the records as they are
            file_name_suffix=file_name_suffix,
            mime_type="application/octet-stream",
            compression_type=CompressionTypes.AUTO,
        )

    def write_record(self, file_handle, records: list[bytes]) -> None:
        file_handle.write(tfrecords(records))
