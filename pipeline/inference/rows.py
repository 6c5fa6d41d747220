"""The rows a model scores: CSV files read in blocks by pyarrow, checked before anything runs, encoded as the
serving signature's tf.Examples (tfx-bsl's encoder, as the project's ExampleGen encodes them)."""

from __future__ import annotations

import csv
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
from tfx.dsl.io import fileio
from tfx_bsl.coders import example_coder

from components.csv_example_gen import as_feature_list, csv_reader
from pipeline.csv_check import InputDataError, check_header, data_files, require_files

BLOCK_BYTES = 1 << 20  # about 12,000 rows of the penguins table: one Beam element, one model call
READ_TYPES = {"int": pa.int64(), "float": pa.float64(), "bytes": pa.string()}


def header(path: str) -> list[str]:
    with fileio.open(path, "rb") as f:
        first = f.readline()
    try:
        return next(csv.reader([first.decode("utf-8")]), [])
    except UnicodeDecodeError:
        raise InputDataError(f"{path} line 1: not UTF-8 text; re-save the file as UTF-8") from None


def blocks(path: str, names: list[str]) -> Iterator[pa.RecordBatch]:
    """The file's rows as text columns (`names`: its header), a record batch per block: the output repeats
    the input as written; types are cast per block."""
    yield from csv_reader(path, dict.fromkeys(names, pa.string()), BLOCK_BYTES)


def typed(batch: pa.RecordBatch, features: dict[str, str]) -> dict[str, pa.Array]:
    """The request's columns of a text block, cast to their feature types (ValueError names a bad cell)."""
    columns = {}
    for name, kind in features.items():
        if name not in batch.schema.names:
            continue
        column = batch.column(name)
        try:
            columns[name] = pc.cast(column, READ_TYPES[kind])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            for row, value in enumerate(column.to_pylist()):
                try:
                    pc.cast(pa.array([value]), READ_TYPES[kind])
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    raise BadCell(row, name, value, kind) from None
    return columns


def keyed_blocks(
    indexed: tuple[int, str], names: list[str], spec: dict
) -> Iterator[tuple[tuple, list[bytes]]]:
    """((file index, block index, text columns), serialized examples) per block of one CSV file."""
    index, path = indexed
    features = spec["features"]
    for block_index, batch in enumerate(blocks(path, names)):
        yield (index, block_index, batch), encode(typed(batch, features), features)


class BadCell(ValueError):
    def __init__(self, row: int, column: str, value, kind: str):
        super().__init__(f"{column}={value!r}")
        self.row, self.column, self.value, self.kind = row, column, value, kind


def encode(columns: dict[str, pa.Array], features: dict[str, str]) -> list[bytes]:
    """Serialized tf.Examples of typed columns: a cell's value, or no value for an empty cell."""
    names = sorted(columns)
    lists = [as_feature_list(columns[name], READ_TYPES[features[name]]) for name in names]
    return example_coder.RecordBatchToExamplesEncoder().encode(pa.RecordBatch.from_arrays(lists, names))


def check_rows(data_dir: str, spec: dict) -> tuple[list[str], list[str], int]:
    """(the data files, their columns, the number of rows) once every file is one a model can score: the
    request's required columns present, no column the model does not know (a label column is allowed and
    ignored), the same header in every file, whole rows, a number in every number cell, a value in every
    required one and a date of its format in every date one. InputDataError otherwise: one line naming the
    file, the line and the fix."""
    files = require_files(data_files(data_dir), data_dir)
    features = spec["features"]
    known = set(features) | {label for label, _ in spec["labels"]}
    columns, count = None, 0
    for path in files:
        names = header(path)
        if not names:
            raise InputDataError(f"{path} is empty; remove it, or give it a header row and data rows")
        check_header(
            path,
            names,
            set(spec["required"]),
            known,
            "are not in the model's schema; remove them from the file, or rename them to the model's columns",
        )
        if columns is not None and names != columns:
            raise InputDataError(
                f"{path}: its header differs from {files[0]}'s ({', '.join(columns)}); give every file the "
                "same columns in the same order"
            )
        columns = names
        count += _check_cells(path, names, features, spec["required"], spec.get("dates", {}))
    return files, columns, count


def _check_dates(path: str, rows_before: int, name: str, column: pa.Array, fmt: str) -> None:
    """InputDataError naming the first value of a date column that is not a date of `fmt` (read as the served
    model's graph reads it, trainer_module/dates.py), which the model would refuse."""
    from trainer_module.dates import invalid_dates

    values = column.to_pylist()
    invalid = invalid_dates(values, fmt)
    if invalid:
        raise InputDataError(
            f"{path} line {rows_before + invalid[0] + 2}: column {name} holds {values[invalid[0]]!r}, "
            f"not a date or time of the format {fmt}; fix the value, or remove the row"
        )


def _check_cells(
    path: str, names: list[str], features: dict[str, str], required: list[str], dates: dict[str, str]
) -> int:
    rows_before = 0
    try:
        for batch in blocks(path, names):
            try:
                typed(batch, features)
            except BadCell as bad:
                raise InputDataError(
                    f"{path} line {rows_before + bad.row + 2}: column {bad.column} holds {bad.value!r}, not "
                    f"{'an integer' if bad.kind == 'int' else 'a number'}; fix the value, or remove the row"
                ) from None
            for name in required:
                nulls = pc.is_null(batch.column(name))
                if pc.any(nulls).as_py():
                    row = pc.index(nulls, True).as_py()
                    raise InputDataError(
                        f"{path} line {rows_before + row + 2}: no value in the required column {name}; fill "
                        "it in, or remove the row"
                    )
            for name in set(dates) & set(names):
                _check_dates(path, rows_before, name, batch.column(name), dates[name])
            rows_before += batch.num_rows
        return rows_before
    except pa.ArrowInvalid as error:
        message = str(error).split("\n")[0]
        if "UTF8" in message:
            raise InputDataError(f"{path}: not UTF-8 text; re-save the file as UTF-8") from None
        raise InputDataError(
            f"{path}: a row after line {rows_before + 1} cannot be read ({message}); fix the row (a stray "
            "comma, or a value with a comma that needs quotes)"
        ) from None
