"""A CsvExampleGen executor that parses and encodes in C++: the same tf.Examples as TFX's, about ten times
faster on large files.

TFX's CsvExampleGen parses every cell and builds every tf.train.Example in Python (about 7,000 rows a
second here, most of a 1M-row data stage). This executor reads the CSV files with pyarrow's CSV reader in
blocks and serializes each block with tfx_bsl's RecordBatch-to-tf.Example encoder; splitting and writing
are TFX's own (the base ExampleGen executor).

The examples are what CsvExampleGen writes: a column is INT when every value parses as an integer, else
FLOAT when every value parses as a number, else BYTES (the type is decided over all the split's files,
before any example is written); an empty cell is the feature with an empty value list; quoted values may
hold commas and newlines. Only empty cells are missing values ("NA" stays a string, as TFX reads it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
from tensorflow.core.example import example_pb2
from tfx.components.example_gen import base_example_gen_executor
from tfx.dsl.io import fileio
from tfx.types import standard_component_specs
from tfx.utils import io_utils
from tfx_bsl.coders import example_coder

BLOCK_BYTES = 8 << 20  # pyarrow's read unit: 8 MiB of CSV, about 100,000 rows of the penguins table

# Narrowest first: a column takes the first type all of its values parse as.
_INFERRED = (pa.int64(), pa.float64(), pa.string())
# How each inferred type is written into tf.Examples: int64_list, float_list, bytes_list.
_FEATURE_TYPES = {pa.int64(): pa.int64(), pa.float64(): pa.float32(), pa.string(): pa.binary()}


def _reader(path: str, column_types: dict[str, pa.DataType]) -> pcsv.CSVStreamingReader:
    # Local files are read by pyarrow itself; others (gs://, s3://...) through TFX's filesystem layer.
    source = path if "://" not in path else pa.PythonFile(fileio.open(path, "rb"), mode="r")
    return pcsv.open_csv(
        source,
        read_options=pcsv.ReadOptions(block_size=BLOCK_BYTES),
        parse_options=pcsv.ParseOptions(newlines_in_values=True),
        convert_options=pcsv.ConvertOptions(
            column_types=column_types, null_values=[""], strings_can_be_null=True
        ),
    )


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
        for batch in _reader(path, as_text):
            for name, column in zip(batch.schema.names, batch.columns, strict=True):
                values = column.drop_null()
                has_values[name] = has_values[name] or len(values) > 0
                while candidates[name] < len(_INFERRED) - 1 and not _parses_as(
                    values, _INFERRED[candidates[name]]
                ):
                    candidates[name] += 1
    return {name: _INFERRED[index] if has_values[name] else None for name, index in candidates.items()}


def _as_feature_list(column: pa.Array, arrow_type: pa.DataType) -> pa.ListArray:
    """One list per row: the value, or an empty list for an empty cell."""
    present = pc.cast(pc.is_valid(column), pa.int32())
    offsets = pa.concat_arrays([pa.array([0], pa.int32()), pc.cumulative_sum(present)])
    return pa.ListArray.from_arrays(offsets, pc.cast(column.drop_null(), _FEATURE_TYPES[arrow_type]))


def serialized_examples(path: str, column_types: dict[str, pa.DataType | None]) -> Iterator[bytes]:
    """The tf.Examples of one CSV file, serialized, block by block."""
    encoder = example_coder.RecordBatchToExamplesEncoder()
    untyped = [name for name, arrow_type in column_types.items() if arrow_type is None]
    read_types = {name: arrow_type or pa.string() for name, arrow_type in column_types.items()}
    for batch in _reader(path, read_types):
        lists = [
            _as_feature_list(column, read_types[name])
            for name, column in zip(batch.schema.names, batch.columns, strict=True)
        ]
        for serialized in encoder.encode(pa.RecordBatch.from_arrays(lists, batch.schema.names)):
            example = example_pb2.Example.FromString(serialized)
            for name in untyped:
                example.features.feature[name].Clear()  # a feature without a value list, as TFX writes it
            # The encoder's feature order varies; TFX's deterministic serialization sorts the features, so
            # each example gets the split CsvExampleGen gives it (the split is a hash of these bytes).
            yield example.SerializeToString(deterministic=True)


@beam.ptransform_fn
@beam.typehints.with_input_types(beam.Pipeline)
@beam.typehints.with_output_types(bytes)
def _CsvToSerializedExamples(pipeline: beam.Pipeline, exec_properties: dict, split_pattern: str):  # noqa: N802
    pattern = os.path.join(exec_properties[standard_component_specs.INPUT_BASE_KEY], split_pattern)
    paths = sorted(fileio.glob(pattern))
    if not paths:
        raise RuntimeError(f"Split pattern {pattern} does not match any files.")
    column_names = io_utils.load_csv_column_names(paths[0])
    for path in paths[1:]:
        if io_utils.load_csv_column_names(path) != column_names:
            raise RuntimeError(f"Files in same split {pattern} have different header.")
    column_types = infer_column_types(paths, column_names)
    return (
        pipeline
        | "CsvFiles" >> beam.Create(paths)
        | "ReadAndEncode" >> beam.FlatMap(serialized_examples, column_types)
    )


class Executor(base_example_gen_executor.BaseExampleGenExecutor):
    """CsvExampleGen's executor with C++ parsing and encoding (module docstring)."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:  # noqa: N802
        return _CsvToSerializedExamples
