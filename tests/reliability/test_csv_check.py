"""Files that cannot be read as the schema's CSV: one line naming the file, the line and the fix."""

from __future__ import annotations

import tracemalloc

import pytest
import tensorflow_data_validation as tfdv

from pipeline import csv_check
from pipeline.config import DEFAULT_SCHEMA
from pipeline.csv_check import InputDataError, check_data

HEADER = "species,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year"
ROW = "Adelie,Torgersen,39.1,18.7,181,3750,male,2007"


@pytest.fixture(scope="module")
def schema():
    return tfdv.load_schema_text(str(DEFAULT_SCHEMA))


def write(directory, content: bytes, name="data.csv"):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(content)
    return directory / name


def test_a_good_file_passes(tmp_path, schema):
    write(tmp_path, f"{HEADER}\n{ROW}\n{ROW}\n".encode())
    assert check_data(str(tmp_path), schema) == 1


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "{path} is empty; remove it, or give it a header row and data rows"),
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "{path} is not a CSV file (binary content); remove it"),
        (
            f"{HEADER}\n{ROW}\nGentoo,Biscoe,46.1,13.2,211,4500,f\xe9male,2007\n".encode("latin-1"),
            "{path} line 3: not UTF-8 text (byte 0xe9); re-save the file as UTF-8",
        ),
        (
            f"{HEADER}\n{ROW}\n{ROW},extra\n".encode(),
            "{path} line 3: 9 fields where the header has 8; fix the row",
        ),
        (
            f"{HEADER.replace(',year', '')}\n{ROW.rsplit(',', 1)[0]}\n".encode(),
            "{path}: the header lacks the required column(s) year",
        ),
        (
            f"{HEADER},colour\n{ROW},blue\n".encode(),
            "{path}: column(s) colour are not in the schema; remove them from the file, or add them",
        ),
        # What common exporters write when it is not UTF-8 CSV with commas.
        (
            f"{HEADER}\r\nGentoo,Biscoe,46.1,13.2,211,4500,f\xe9male,2007\r\n".encode("cp1252"),
            "{path} line 2: not UTF-8 text (byte 0xe9); re-save the file as UTF-8 (in Excel: CSV UTF-8)",
        ),
        (
            ("\ufeff" + f"{HEADER}\n{ROW}\n".replace(",", "\t")).encode("utf-16-le"),
            "{path} is UTF-16 text; re-save it as UTF-8",
        ),
        (
            f"{HEADER}\n{ROW}\n".replace(",", ";").encode(),
            "{path}: its columns are separated by semicolons, not commas; re-save it as comma-separated",
        ),
        (
            f"{HEADER}\n{ROW}\n".replace(",", "\t").encode(),
            "{path}: its columns are separated by tabs, not commas",
        ),
        (
            f'"",{HEADER}\n"1",{ROW}\n'.encode(),
            "{path}: column(s) 1 of the header have no name; name them, or remove them (a spreadsheet's",
        ),
        (
            f"{HEADER},island\n{ROW},Dream\n".encode(),
            "{path}: the header names column(s) island more than once; give each column its own name",
        ),
    ],
    ids=[
        "empty",
        "binary",
        "not-utf8",
        "wrong-field-count",
        "missing-column",
        "unknown-column",
        "excel-cp1252",
        "excel-unicode-text",
        "semicolons",
        "tabs",
        "r-row-names",
        "repeated-column",
    ],
)
def test_unreadable_files_are_named_with_the_fix(tmp_path, schema, content, message):
    path = write(tmp_path, content)
    with pytest.raises(InputDataError) as raised:
        check_data(str(tmp_path), schema)
    assert str(raised.value).startswith(message.format(path=path))
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("block_bytes", [7, 64, 1 << 20])
def test_a_byte_that_is_not_utf8_is_found_on_its_line_whatever_the_blocks(
    tmp_path, schema, monkeypatch, block_bytes
):
    """The file is read a block at a time; multi-byte characters and CRLF endings straddle the blocks."""
    monkeypatch.setattr(csv_check, "BLOCK_BYTES", block_bytes)
    good = "Gentoo,Biscoe,46.1,13.2,211,4500,éé€,2007\r\n"
    content = ("\ufeff" + HEADER + "\r\n" + good * 300).encode() + b"Adelie,Dream,1,2,3,4,f\xe9male,2007\r\n"
    path = write(tmp_path, content + good.encode() * 10)
    with pytest.raises(InputDataError) as raised:
        check_data(str(tmp_path), schema)
    assert str(raised.value).startswith(f"{path} line 302: not UTF-8 text (byte 0xe9)")


def test_a_large_file_is_checked_as_a_stream(tmp_path, schema):
    """Memory stays flat: a 10 MB file is checked holding far less than the file (whole, it was held as
    bytes and as text, about 5 times its size), and a bad row deep in it is named on its line."""
    rows = 200_000
    path = write(tmp_path, f"{HEADER}\n{(ROW + chr(10)) * rows}{ROW},extra\n".encode())
    tracemalloc.start()
    try:
        with pytest.raises(InputDataError) as raised:
            check_data(str(tmp_path), schema)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(raised.value).startswith(f"{path} line {rows + 2}: 9 fields where the header has 8")
    assert path.stat().st_size > 9_000_000
    assert peak < 1_000_000


def test_an_empty_directory_or_span_range(tmp_path, schema):
    with pytest.raises(InputDataError, match=f"no data files in {tmp_path}; put one or more CSV files"):
        check_data(str(tmp_path), schema)
    write(tmp_path / "span-1", f"{HEADER}\n{ROW}\n".encode())
    assert check_data(str(tmp_path), schema, span_range=(1, 1)) == 1
    with pytest.raises(InputDataError, match="no data files in spans 2-2 of"):
        check_data(str(tmp_path), schema, span_range=(2, 2))


# What common exporters write by default, as bytes: all of these are the same two rows.
QUOTED_ROW = ",".join(f'"{v}"' if not v.replace(".", "").isdigit() else v for v in ROW.split(","))
SAME_DATA = {
    "lf": f"{HEADER}\n{ROW}\n{ROW}\n".encode(),  # pandas to_csv, LibreOffice, Python's csv module on Linux
    "excel-csv-utf8": ("\ufeff" + f"{HEADER}\r\n{ROW}\r\n{ROW}\r\n").encode(),  # byte order mark, CRLF
    "classic-mac-cr": f"{HEADER}\r{ROW}\r{ROW}\r".encode(),
    "no-final-newline": f"{HEADER}\n{ROW}\n{ROW}".encode(),
    "r-write-csv": (  # write.csv(row.names = FALSE): every string quoted
        ",".join(f'"{name}"' for name in HEADER.split(",")) + f"\n{QUOTED_ROW}\n{QUOTED_ROW}\n"
    ).encode(),
    "google-sheets": f"{HEADER}\r\n{ROW}\r\n{ROW}".encode(),  # CRLF, no final newline
}


@pytest.mark.parametrize("dialect", list(SAME_DATA))
def test_every_common_dialect_goes_through_as_the_same_examples(tmp_path, schema, dialect):
    """The check passes it, and ExampleGen's reader makes the same tf.Examples as from plain LF."""
    from components.csv_example_gen import _split_columns, serialized_examples

    def examples(directory):
        paths, types = _split_columns({"input_base": str(directory)}, "*")
        return [example for path in paths for example in serialized_examples(path, types)]

    write(tmp_path / "lf", SAME_DATA["lf"])
    write(tmp_path / dialect, SAME_DATA[dialect])
    assert check_data(str(tmp_path / dialect), schema) == 1
    assert examples(tmp_path / dialect) == examples(tmp_path / "lf")
    assert len(examples(tmp_path / "lf")) == 2


def test_the_schema_draft_reads_every_dialect_as_the_same_data(tmp_path):
    from pipeline.schema_draft import draft_schema

    drafts = {}
    for dialect in ("lf", "excel-csv-utf8", "classic-mac-cr", "r-write-csv"):
        write(tmp_path / dialect, SAME_DATA[dialect])
        schema, statistics = draft_schema(str(tmp_path / dialect), "species")
        assert statistics.num_examples == 2
        drafts[dialect] = schema
    assert [f.name for f in drafts["lf"].feature] == HEADER.split(",")
    assert all(schema == drafts["lf"] for schema in drafts.values())
