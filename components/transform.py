"""TFX's Transform with its examples read a batch at a time: the same analysis and the same transformed
examples, without a Beam element per example on the way in.

TFX's Transform reads its input through tfx_bsl's TFExampleRecord, whose Beam source is Beam's Python
TFRecord reader: one Beam element per serialized example, each checked, windowed and passed between
stages in Python, then batched again (BatchElements, at most 1,000) for tfx_bsl's decoder. At 1M rows that
path is about a third of Transform's time (py-spy, bench/RESULTS.md), and Transform reads the train split
twice (analysis, then transformation). Here each input file is read by TensorFlow's C++ TFRecord reader and
decoded by the same tfx_bsl decoder, batches of 1,000 examples, in one DoFn (TFExampleRecord's own
`RecordBatches`): Beam moves one element per batch, and files spread over the workers.
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam
import pyarrow as pa
from tfx.components.transform import component as transform_component
from tfx.components.transform import executor as transform_executor
from tfx.dsl.components.base import executor_spec
from tfx.dsl.io import fileio
from tfx_bsl.tfxio import dataset_options, tensor_representation_util
from tfx_bsl.tfxio.tf_example_record import TFExampleRecord

BATCH_SIZE = 1000  # tfx_bsl's cap on the batches its Beam source builds


class BatchReadTFExampleRecord(TFExampleRecord):
    """TFExampleRecord whose Beam source yields one element per decoded batch of a file."""

    def BeamSource(self, batch_size: int | None = None) -> beam.PTransform:  # noqa: N802 (TFXIO's API)
        files = sorted({path for pattern in self._file_pattern for path in fileio.glob(pattern)})
        read = _ReadBatches(self._schema, self.raw_record_column_name, batch_size or BATCH_SIZE)

        @beam.typehints.with_output_types(pa.RecordBatch)
        def source(pipeline):
            return (
                pipeline
                | "Files" >> beam.Create(files)
                | "SpreadFiles" >> beam.Reshuffle()
                | "ReadBatches" >> beam.ParDo(read)
            )

        return beam.ptransform_fn(source)()

    def _ProjectImpl(self, tensor_names: list[str]) -> BatchReadTFExampleRecord:  # noqa: N802
        return BatchReadTFExampleRecord(
            file_pattern=self._file_pattern,
            schema=tensor_representation_util.ProjectTensorRepresentationsInSchema(
                self._schema, tensor_names
            ),
            raw_record_column_name=self.raw_record_column_name,
            telemetry_descriptors=self.telemetry_descriptors,
        )


class _ReadBatches(beam.DoFn):
    def __init__(self, schema, raw_record_column_name: str | None, batch_size: int):
        self._schema = schema.SerializeToString() if schema is not None else None
        self._raw_record_column_name = raw_record_column_name
        self._batch_size = batch_size

    def process(self, path: str) -> Iterator[pa.RecordBatch]:
        from tensorflow_metadata.proto.v0 import schema_pb2

        schema = schema_pb2.Schema.FromString(self._schema) if self._schema is not None else None
        source = TFExampleRecord(path, schema=schema, raw_record_column_name=self._raw_record_column_name)
        options = dataset_options.RecordBatchesOptions(
            batch_size=self._batch_size, num_epochs=1, shuffle=False
        )
        yield from source.RecordBatches(options)


class Executor(transform_executor.Executor):
    def _CreateTFXIO(self, dataset, schema):  # noqa: N802 (TFX's method)
        made = super()._CreateTFXIO(dataset, schema)
        if type(made) is not TFExampleRecord:  # raw records, sequence examples: TFX's own reading
            return made
        return BatchReadTFExampleRecord(
            file_pattern=made._file_pattern,  # noqa: SLF001
            schema=schema,
            raw_record_column_name=made.raw_record_column_name,
            telemetry_descriptors=made.telemetry_descriptors,
        )


class Transform(transform_component.Transform):
    """TFX's Transform with the executor above."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
