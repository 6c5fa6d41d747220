"""Files that cannot be read as the schema's CSV: one line naming the file, the line and the fix."""

from __future__ import annotations

import pytest
import tensorflow_data_validation as tfdv

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
    ],
    ids=["empty", "binary", "not-utf8", "wrong-field-count", "missing-column", "unknown-column"],
)
def test_unreadable_files_are_named_with_the_fix(tmp_path, schema, content, message):
    path = write(tmp_path, content)
    with pytest.raises(InputDataError) as raised:
        check_data(str(tmp_path), schema)
    assert str(raised.value).startswith(message.format(path=path))
    assert "\n" not in str(raised.value)


def test_an_empty_directory_or_span_range(tmp_path, schema):
    with pytest.raises(InputDataError, match=f"no data files in {tmp_path}; put one or more CSV files"):
        check_data(str(tmp_path), schema)
    write(tmp_path / "span-1", f"{HEADER}\n{ROW}\n".encode())
    assert check_data(str(tmp_path), schema, span_range=(1, 1)) == 1
    with pytest.raises(InputDataError, match="no data files in spans 2-2 of"):
        check_data(str(tmp_path), schema, span_range=(2, 2))
