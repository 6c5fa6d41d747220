"""TFX's Transform with its examples read and written in batches: the same analysis and the same transformed
examples, without Beam moving each example as an element of its own.

TFX's Transform reads its input with Beam's TFRecord source, written in Python, one Beam element per
example, and batches the examples again for tfx_bsl's decoder; it writes each transformed example as an
element of its own through Beam's TFRecord sink, which frames and compresses it in Python. At 1M rows that is
1.67M elements read (the analysis pass reads the train split, the transformation pass both splits) and 1M
written, about a third of Transform's time (bench/RESULTS.md, "Where the data stage's time goes").

This executor reads each input file with TensorFlow's TFRecord reader, in batches of tfx_bsl's batch cap
(1,000 examples, the most TFX's batching gives), decodes each batch with the decoder TFX uses, and writes
each transformed batch as one element: its examples are encoded by the encoder TFX uses and framed as
TFRecords (length, masked CRC-32C of the length, data, masked CRC-32C of the data) into one write of a
GZIP'd file, named as TFX names it. Beam still schedules the work: files are spread over workers, and the
sink writes temporary files that only a finished bundle renames into place.

Left out: tfx_bsl's telemetry counters of raw records and record batches (Beam metrics that no step reads).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from unittest import mock

import apache_beam as beam
import google_crc32c
import pyarrow as pa
import tensorflow as tf
from apache_beam import coders
from apache_beam.io import filebasedsink
from apache_beam.io.filesystem import CompressionTypes
from tfx.components.transform import component as transform_component
from tfx.components.transform import executor as transform_executor
from tfx.components.transform import labels
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx_bsl.coders import batch_util, example_coder
from tfx_bsl.tfxio import record_based_tfxio, tf_example_record

_INTERNAL_KEY = transform_executor._TRANSFORM_INTERNAL_FEATURE_FOR_KEY


def batch_size(desired: int | None) -> int:
    """Examples per batch: TFX's when it fixes one, else tfx_bsl's cap (its batching tunes up to it)."""
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
    """tfx_bsl's TFXIO of tf.Examples in TFRecord files, whose Beam source reads and decodes by the batch."""

    def BeamSource(self, batch_size_: int | None = None) -> beam.PTransform:
        schema = self._GetSchemaForDecoding()
        decode = _DecodeFile(
            schema.SerializeToString() if schema is not None else None,
            self.raw_record_column_name,
            batch_size(batch_size_),
        )

        @beam.ptransform_fn
        def source(pipeline):
            return (
                pipeline
                | "Patterns" >> beam.Create(self._file_pattern)
                | "Files" >> beam.FlatMap(lambda pattern: sorted(fileio.glob(pattern)))
                | "SpreadFiles" >> beam.Reshuffle()
                | "ReadAndDecode" >> beam.ParDo(decode)
            )

        return source()

    def _ProjectImpl(self, tensor_names):
        projected = super()._ProjectImpl(tensor_names)
        return BatchedExampleRecord(
            file_pattern=self._file_pattern,
            schema=projected._schema,
            raw_record_column_name=self.raw_record_column_name,
            telemetry_descriptors=self.telemetry_descriptors,
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


class _EncodeBatch(beam.DoFn):
    """A transformed record batch as its serialized tf.Examples, TFX's internal key column left out."""

    def __init__(self, schema):
        self._schema = schema

    def setup(self):
        self._encoder = example_coder.RecordBatchToExamplesEncoder(self._schema)

    def process(self, element) -> Iterator[list[bytes]]:
        record_batch, _ = element
        if _INTERNAL_KEY in record_batch.schema.names:
            record_batch = transform_executor._FilterInternalColumn(
                record_batch, record_batch.schema.names.index(_INTERNAL_KEY)
            )
        yield self._encoder.encode(record_batch)


class Processor(transform_executor.TransformProcessor):
    """TFX's Transform pipeline, reading with BatchedExampleRecord and writing TFRecords a batch at a time."""

    def _CreateTFXIO(self, dataset, schema):
        tfxio = super()._CreateTFXIO(dataset, schema)
        if type(tfxio) is not tf_example_record.TFExampleRecord:
            return tfxio  # another format or payload: TFX's own reading
        return BatchedExampleRecord(
            file_pattern=tfxio._file_pattern,
            schema=schema,
            raw_record_column_name=tfxio.raw_record_column_name,
            telemetry_descriptors=tfxio.telemetry_descriptors,
        )

    @staticmethod
    @beam.ptransform_fn
    def _EncodeAndWrite(pcoll, schema, file_format, output_path):
        if file_format != labels.FORMAT_TFRECORD:
            return pcoll | transform_executor.TransformProcessor._EncodeAndWrite(
                schema, file_format, output_path
            )
        return (
            pcoll
            | "EncodeBatches" >> beam.ParDo(_EncodeBatch(schema))
            | "WriteBatches" >> beam.io.Write(BatchedTFRecordSink(output_path, file_name_suffix=".gz"))
        )


class Executor(transform_executor.Executor):
    """TFX's Transform executor running the Processor above.

    TFX's `Do` turns the artifacts and properties into the processor's inputs and builds its
    TransformProcessor by the executor module's global name, so `Do` runs with that name bound to Processor
    (executors run one at a time in a process: LocalDagRunner's in turn, a cluster's one per container)."""

    def Do(self, input_dict, output_dict, exec_properties):
        with mock.patch.object(transform_executor, "TransformProcessor", Processor):
            super().Do(input_dict, output_dict, exec_properties)


class Transform(transform_component.Transform):
    """TFX's Transform with the executor above."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
