"""Checks the CSV files before the pipeline reads them, so that a broken file is reported as its name,
line and fix, not as a Beam stack trace from inside ExampleGen.

Content problems (a number column holding text, a value out of range, an unknown category, a missing
required value) are the data gate's: they need the statistics of all rows. This module checks what makes
a file unreadable as the CSV the schema describes: empty, binary, UTF-16 or otherwise not UTF-8, another
delimiter than the comma, a header with an unnamed or repeated column or without a required one, a row
whose field count differs from its header's.
"""

from __future__ import annotations

import csv
import io
import os

from pipeline.storage.streams import open_binary

SNIFF_BYTES = 8192
BLOCK_BYTES = 1 << 20


class InputDataError(ValueError):
    """A data file cannot be read as the CSV the schema describes."""


def data_files(data_dir: str, span_range: tuple[int, int] | None = None) -> list[str]:
    """The files ExampleGen will read: those of the data directory, or of the spans in `span_range`."""
    directories = [data_dir]
    if span_range is not None:
        directories = [os.path.join(data_dir, f"span-{n}") for n in range(span_range[0], span_range[1] + 1)]
    if "://" in data_dir:
        return _remote_files(directories)
    files = []
    for directory in directories:
        if os.path.isdir(directory):
            files += sorted(
                os.path.join(directory, name)
                for name in os.listdir(directory)
                if not name.startswith(".") and os.path.isfile(os.path.join(directory, name))
            )
    return files


def _remote_files(directories: list[str]) -> list[str]:
    """data_files on object storage (gs://, s3://), through TFX's filesystem layer."""
    from tfx.dsl.io import fileio

    files = []
    for directory in directories:
        if fileio.isdir(directory):
            names = (name.rstrip("/") for name in fileio.listdir(directory))
            paths = (f"{directory.rstrip('/')}/{name}" for name in names if not name.startswith("."))
            files += sorted(path for path in paths if not fileio.isdir(path))
    return files


UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
OTHER_DELIMITERS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


def check_csv(path: str, required: set[str], known: set[str] | None = None) -> None:
    """Raises InputDataError with one line naming `path` (and the line), the problem and the fix.

    Read as ExampleGen reads it: UTF-8 with or without a byte order mark, LF, CRLF or CR line endings,
    RFC 4180 quoting, a final newline or none. The file is read as a stream, a block at a time: memory stays
    flat whatever its size."""
    with open_binary(path) as stream:
        head = stream.read(SNIFF_BYTES)
    if not head.strip() or head == UTF8_BOM:
        raise InputDataError(f"{path} is empty; remove it, or give it a header row and data rows")
    if head.startswith(UTF16_BOMS):
        raise InputDataError(f"{path} is UTF-16 text; re-save it as UTF-8 (in Excel: CSV UTF-8)")
    if b"\0" in head:
        raise InputDataError(f"{path} is not a CSV file (binary content); remove it from the data directory")
    with open_binary(path) as stream:
        rows = csv.reader(io.TextIOWrapper(stream, encoding="utf-8-sig", newline=""))
        try:
            header = next(rows)
            check_header(path, header, required, known)
            for row in rows:
                if row and len(row) != len(header):
                    raise InputDataError(
                        f"{path} line {rows.line_num}: {len(row)} fields where the header has {len(header)}; "
                        "fix the row (a stray comma, or a value with a comma that needs quotes)"
                    )
        except UnicodeDecodeError:
            line, byte = _first_undecodable(path)
            raise InputDataError(
                f"{path} line {line}: not UTF-8 text (byte 0x{byte:02x}); re-save the file as UTF-8 "
                "(in Excel: CSV UTF-8)"
            ) from None
        except csv.Error as error:
            raise InputDataError(
                f"{path} line {rows.line_num}: not readable as CSV ({error}); fix the row"
            ) from None


def _first_undecodable(path: str) -> tuple[int, int]:
    """(line, value) of the first byte of `path` that is not UTF-8, read a block at a time: each block is
    cut after its last line ending (CR or LF), which is never inside a multi-byte character."""
    line = 1
    with open_binary(path) as stream:
        carry = stream.read(len(UTF8_BOM))
        carry = b"" if carry == UTF8_BOM else carry
        while True:
            block = stream.read(BLOCK_BYTES)
            data = carry + block
            cut = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1 if block else len(data)
            part, carry = data[:cut], data[cut:]
            try:
                part.decode("utf-8")
            except UnicodeDecodeError as error:
                return line + part[: error.start].count(b"\n"), part[error.start]
            line += part.count(b"\n")
            if not block:
                raise ValueError(f"{path} is UTF-8 text")  # the caller saw it fail to decode


def check_header(
    path: str,
    header: list[str],
    required: set[str],
    known: set[str] | None = None,
    unknown_fix: str = "are not in the schema; remove them from the file, or add them to the schema",
) -> None:
    """Raises InputDataError when the header is not a comma-separated list of distinct names, lacks a
    required column, or (with `known`) holds another."""
    if len(header) == 1:
        for delimiter, name in OTHER_DELIMITERS.items():
            if delimiter in header[0]:
                raise InputDataError(
                    f"{path}: its columns are separated by {name}, not commas; re-save it as comma-separated "
                    "CSV"
                )
    unnamed = [str(index) for index, name in enumerate(header, start=1) if not name.strip()]
    if unnamed:
        raise InputDataError(
            f"{path}: column(s) {', '.join(unnamed)} of the header have no name; name them, or remove them "
            "(a spreadsheet's or R's row-number column: write.csv(..., row.names = FALSE))"
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise InputDataError(
            f"{path}: the header names column(s) {', '.join(repeated)} more than once; give each column its "
            "own name"
        )
    missing = sorted(set(required) - set(header))
    if missing:
        raise InputDataError(
            f"{path}: the header lacks the required column(s) {', '.join(missing)} (its columns: "
            f"{', '.join(header)}); add them, or fix the header"
        )
    unknown = sorted(set(header) - known) if known is not None else []
    if unknown:
        raise InputDataError(f"{path}: column(s) {', '.join(unknown)} {unknown_fix}")


def require_files(files: list[str], where: str) -> list[str]:
    if not files:
        raise InputDataError(f"no data files in {where}; put one or more CSV files with a header row there")
    return files


def check_data(data_dir: str, schema, span_range: tuple[int, int] | None = None) -> int:
    """Checks every file ExampleGen will read against `schema` (a TFMD Schema); returns how many."""
    where = f"spans {span_range[0]}-{span_range[1]} of {data_dir}" if span_range else data_dir
    files = require_files(data_files(data_dir, span_range), where)
    known = {feature.name for feature in schema.feature}
    required = {
        f.name
        for f in schema.feature
        if f.presence.min_fraction >= 1.0 and "SERVING" not in f.not_in_environment
    }
    for path in files:
        check_csv(path, required, known)
    return len(files)
