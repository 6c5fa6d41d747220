"""A drafted schema accepts the data it was drafted from, marks the label, and flags what to review."""

from __future__ import annotations

import datetime

import pytest
import tensorflow_data_validation as tfdv

from pipeline.config import IDENTIFIER_TAG
from pipeline.data import write_penguins_csv
from pipeline.schema_draft import (
    DATE_FORMATS,
    DAY_OR_MONTH_FIRST,
    date_format,
    draft_schema,
    review_notes,
)


def test_draft_accepts_its_own_data_including_empty_cells(tmp_path):
    write_penguins_csv(tmp_path)
    schema, stats = draft_schema(str(tmp_path), "species")

    species = next(f for f in schema.feature if f.name == "species")
    assert list(species.not_in_environment) == ["SERVING"]
    assert species.presence.min_fraction == 1.0
    assert set(schema.default_environment) == {"TRAINING", "SERVING"}
    # Empty CSV cells arrive as empty value lists: optional features must allow zero values.
    sex = next(f for f in schema.feature if f.name == "sex")
    assert sex.presence.min_fraction < 1.0 and not sex.value_count.HasField("min")

    training = tfdv.generate_statistics_from_csv(str(tmp_path / "penguins.csv"))
    assert dict(tfdv.validate_statistics(training, schema, environment="TRAINING").anomaly_info) == {}

    notes = review_notes(schema, stats, "species")
    assert notes[0].startswith("label 'species': task classification")
    assert any(
        n.startswith("island: BYTES, required; only these values are allowed: Biscoe, Dream, Torgersen")
        for n in notes
    )
    # 2 and 11 of the 344 rows have the cell empty.
    assert "bill_length_mm: FLOAT, may be missing (empty in 0.6% of rows); observed 32.1 .. 59.6" in " ".join(
        notes
    )
    assert any(n.startswith("sex: BYTES, may be missing (empty in 3.2% of rows)") for n in notes)


def test_a_string_column_of_mostly_unique_values_is_drafted_as_an_identifier(tmp_path):
    """Two rows in three carry a name seen only once: an identifier (tagged, no enumerated domain), while a
    numeric column of unique values and a small category stay features; an empty label cell is counted."""
    rows = ["name,id,colour,price"]
    for i in range(300):
        name = f"car {i}" if i % 3 else "ford pinto"  # 200 of 300 names unique, 100 repeated
        price = "" if i % 50 == 0 else str(1000 + i)  # 6 of 300 unlabelled
        rows.append(f"{name},{i},{['red', 'blue'][i % 2]},{price}")
    (tmp_path / "cars.csv").write_text("\n".join(rows) + "\n")
    schema, stats = draft_schema(str(tmp_path), "price")
    by_name = {f.name: f for f in schema.feature}
    assert list(by_name["name"].annotation.tag) == [IDENTIFIER_TAG] and not by_name["name"].domain
    assert not by_name["id"].annotation.tag and not by_name["colour"].annotation.tag
    assert by_name["colour"].domain  # an enumerated category
    notes = review_notes(schema, stats, "price")
    assert notes[0].endswith(
        "empty in 2.0% of rows (6 of 300): those rows are left out of training and evaluation (a run stops "
        "past --max-unlabelled-share)"
    )
    (name,) = [n for n in notes if n.startswith("name:")]
    assert "an identifier" in name and "no model input by default, carried into predict's output" in name
    # A stricter rule (all rows unique) keeps it a feature.
    strict, _ = draft_schema(str(tmp_path), "price", identifier_share=0.9)
    assert not next(f for f in strict.feature if f.name == "name").annotation.tag


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["2012-01-05", "2012-12-31"], ("%Y-%m-%d", None)),
        (["1970-01-01", "1982-01-01"], ("%Y-%m-%d", None)),  # years written as dates
        (["2012/01/05", "2013/11/30"], ("%Y/%m/%d", None)),
        (["2012-01", "2012-11"], ("%Y-%m", None)),
        (["2012-01-05T10:30:00Z", "2012-01-05T23:59:59"], ("%Y-%m-%dT%H:%M:%S", None)),
        (["2012-01-05 10:30:00"], ("%Y-%m-%d %H:%M:%S", None)),
        (["2020-02-29", "2021-03-01"], ("%Y-%m-%d", None)),  # a leap day
        (["2019-02-29", "2021-03-01"], (None, None)),  # no such day: text
        (["2012-13-01"], (None, None)),
        (["13/01/2012", "05/01/2012"], ("%d/%m/%Y", None)),
        (["01/13/2012", "05/01/2012"], ("%m/%d/%Y", None)),
        (
            ["01/05/2012", "02/03/2012"],
            (None, "day and month cannot be told apart (no day past 12): left as text"),
        ),
        (
            ["2012-01-05T10:00:00+02:00"],
            (None, "date-times with a time-zone offset are not read: left as text"),
        ),
        (["Biscoe", "2012-01-05"], (None, None)),
    ],
)
def test_dates_are_recognised_by_format(values, expected):
    assert date_format(values) == expected


def _parses(value: str, fmt: str) -> bool:
    try:
        datetime.datetime.strptime(value, fmt)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("fmt", [fmt for fmt, _ in DATE_FORMATS])
def test_every_format_the_draft_recognises_is_read_in_the_graph_alike(fmt):
    """What the draft takes for a date of a format (Python's strptime), the graph reads (trainer_module):
    every day of four years around a leap year at several times; and what strptime refuses, it refuses."""
    from trainer_module.dates import invalid_dates

    start = datetime.datetime(1999, 12, 1, 0, 0, 0)
    moments = [
        start + datetime.timedelta(days=d, hours=d % 24, minutes=d % 60, seconds=d % 60) for d in range(1500)
    ]
    values = sorted({m.strftime(fmt) for m in moments})
    assert all(date_format([v]) == (fmt, None) or fmt in DAY_OR_MONTH_FIRST for v in values)
    assert invalid_dates(values, fmt) == []
    wrong = [v.replace("29", "30") for v in values if "02" in v and "29" in v] + ["2021-13-01", "x"]
    refused = [v for v in wrong if not _parses(v, fmt)]
    assert invalid_dates(refused, fmt) == list(range(len(refused)))


def test_date_columns_are_recognised_before_any_other_rule(tmp_path):
    """A year written as a date and a daily date (one value per row, which would otherwise be an identifier)
    get their format and no list of allowed values; an integer column is never a date."""
    rows = ["year,day,when,count,label"]
    for i in range(200):
        day = datetime.date(2012, 1, 1) + datetime.timedelta(days=i)
        rows.append(
            f"{1970 + i % 12}-01-01,{day:%Y/%m/%d},{i % 12 + 1:02d}/0{i % 9 + 1}/2012,{i},{'ab'[i % 2]}"
        )
    (tmp_path / "dates.csv").write_text("\n".join(rows) + "\n")
    schema, stats = draft_schema(str(tmp_path), "label")
    by_name = {f.name: f for f in schema.feature}
    assert by_name["year"].time_domain.string_format == "%Y-%m-%d" and not by_name["year"].domain
    assert by_name["day"].time_domain.string_format == "%Y/%m/%d" and not by_name["day"].annotation.tag
    assert not by_name["count"].HasField("time_domain")
    assert {d.name for d in schema.string_domain} == {"label", "when"}  # no orphan domains left
    # Days and months both at most 12: left as text, and the draft says why.
    assert not by_name["when"].HasField("time_domain")
    notes = review_notes(schema, stats, "label")
    (year,) = [n for n in notes if n.startswith("year:")]
    assert "dates or times in the format %Y-%m-%d (time_domain): no list of allowed values" in year
    assert "the model sees its year, month, day of year, weekday" in year and "hour" not in year
    (when,) = [n for n in notes if n.startswith("when:")]
    assert "day and month cannot be told apart (no day past 12): left as text" in when
    # Next year's rows pass the drafted schema.
    later = tmp_path / "later"
    later.mkdir()
    (later / "dates.csv").write_text("year,day,when,count,label\n1990-01-01,2013/05/07,01/01/2012,3,a\n")
    statistics = tfdv.generate_statistics_from_csv(str(later / "dates.csv"))
    anomalies = tfdv.validate_statistics(statistics, schema, environment="TRAINING").anomaly_info
    assert not {"year", "day"} & set(anomalies)
