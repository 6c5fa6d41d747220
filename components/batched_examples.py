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
import pyarrow as pa
import tensorflow as tf
from apache_beam import coders
from apache_beam.io import filebasedsink
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
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


class _DecodeFile(beam.DoFn):
    """A file's examples as record batches of the schema's columns (plus the raw records, when asked)."""

    def __init__(self, schema_bytes: bytes | None, raw_record_column: str | None, size: int):
        self._schema_bytes = schema_bytes
        self._raw_record_column = raw_record_column
        self._size = size

    def setup(self):
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
    does not store the first read's output)."""

    def __init__(self, *args, reads: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self._reads = reads

    def BeamSource(self, batch_size: int | None = None) -> beam.PTransform:  # noqa: N802 (TFXIO's name)
        schema = self._GetSchemaForDecoding()
        schema_bytes = schema.SerializeToString() if schema is not None else None
        size = examples_per_batch(batch_size)
        decode = _DecodeFile(schema_bytes, self.raw_record_column_name, size)
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
        return batched(super()._ProjectImpl(tensor_names), self._reads)


def batched(tfxio: TFXIO, reads: dict | None = None) -> TFXIO:
    """`tfxio` read by the batch where it is tfx_bsl's TFXIO of tf.Examples in TFRecord files (reads shared
    through `reads`, see BatchedExampleRecord); any other format or payload as it is."""
    if type(tfxio) is not tf_example_record.TFExampleRecord:
        return tfxio
    return BatchedExampleRecord(
        file_pattern=tfxio._file_pattern,
        schema=tfxio._schema,
        raw_record_column_name=tfxio.raw_record_column_name,
        telemetry_descriptors=tfxio.telemetry_descriptors,
        reads=reads,
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
