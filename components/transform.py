"""TFX's Transform with its examples read and written in batches: the same analysis and the same transformed
examples, without Beam moving each example as an element of its own.

TFX's Transform reads its input with Beam's TFRecord source, one Beam element per example, and batches the
examples again for tfx_bsl's decoder; it writes each transformed example as an element of its own through
Beam's TFRecord sink, which frames and compresses it in Python. At 1M rows that is 1.67M elements read (the
analysis pass reads the train split, the transformation pass both splits) and 1M written: TFX's Transform
took 75 s where this one takes 41 s (bench/RESULTS.md, "Where the data stage's time goes").

This executor runs TFX's Transform pipeline reading with `batched_examples.BatchedExampleRecord` and
writing each transformed batch as one element: its examples encoded by the encoder TFX uses and written by
`batched_examples.BatchedTFRecordSink` into the GZIP'd files TFX names.
"""

from __future__ import annotations

from collections.abc import Iterator
from unittest import mock

import apache_beam as beam
from tfx.components.transform import component as transform_component
from tfx.components.transform import executor as transform_executor
from tfx.components.transform import labels
from tfx.dsl.components.base import executor_spec
from tfx_bsl.coders import example_coder

from components.batched_examples import BatchedTFRecordSink, batched

_INTERNAL_KEY = transform_executor._TRANSFORM_INTERNAL_FEATURE_FOR_KEY


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
    """TFX's Transform pipeline, reading by the batch and writing TFRecords a batch at a time; in one worker
    the transformation pass takes the train split's batches from the analysis pass instead of reading and
    decoding the split again (where both read the same columns, up to batched_examples.SHARED_READ_BYTES of
    files)."""

    def __init__(self):
        super().__init__()
        self._reads = {}  # the reads of this processor's pipeline (batched_examples.BatchedExampleRecord)

    def _CreateTFXIO(self, dataset, schema):  # noqa: N802 (TFX's name)
        return batched(super()._CreateTFXIO(dataset, schema), self._reads)

    @staticmethod
    @beam.ptransform_fn
    def _EncodeAndWrite(pcoll, schema, file_format, output_path):  # noqa: N802 (TFX's name)
        if file_format != labels.FORMAT_TFRECORD:
            tfx_write = transform_executor.TransformProcessor._EncodeAndWrite
            return pcoll | tfx_write(schema, file_format, output_path)
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

    def Do(self, input_dict, output_dict, exec_properties):  # noqa: N802 (TFX's name)
        with mock.patch.object(transform_executor, "TransformProcessor", Processor):
            super().Do(input_dict, output_dict, exec_properties)


class Transform(transform_component.Transform):
    """TFX's Transform with the executor above."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
