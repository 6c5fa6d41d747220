"""Dates and times read in the TensorFlow graph, and the calendar features Transform derives from them.

TensorFlow has no strptime: a value is matched against the format's pattern (`date_pattern`), its fields
read as integers, and checked with calendar arithmetic (month lengths, leap years: divisible by 4, except
centuries not divisible by 400). The same function reads a column in Transform, in the served model
(whose `transform_features` is Transform's graph) and in ExampleGen's check that every date parses
(components/csv_example_gen.py), so the data gate refuses exactly what the graph cannot read.

Formats are strptime's notation as the schema's `time_domain.string_format` records them, built from the
directives of DIRECTIVES; a time-zone offset is not read (the schema draft leaves such columns as text), a
trailing `Z` (UTC) is. Features (`date_features`), derived only from what the format carries: the year as a
number; the month as a cyclic pair (sine, cosine) when the format has months; the day of the year and the
weekday as cyclic pairs when it has days; the hour of the day (with its minutes) when it has hours.
"""

from __future__ import annotations

import math
import re

import tensorflow as tf

# strptime directive -> (field, pattern of its digits, smallest and largest value). Seconds as strptime
# reads them (61: leap seconds); days are checked against their month.
DIRECTIVES = {
    "%Y": ("year", r"\d{4}", 1, 9999),
    "%m": ("month", r"\d{1,2}", 1, 12),
    "%d": ("day", r"\d{1,2}", 1, 31),
    "%H": ("hour", r"\d{1,2}", 0, 23),
    "%M": ("minute", r"\d{1,2}", 0, 59),
    "%S": ("second", r"\d{1,2}", 0, 61),
}
_DIRECTIVE = re.compile("|".join(DIRECTIVES))
# The fields a value of a format without them takes (a year-month is the first of its month).
_DEFAULTS = {"year": 1970, "month": 1, "day": 1, "hour": 0, "minute": 0, "second": 0}


class DateFormatError(ValueError):
    """A format with a directive this module does not read."""


def date_pattern(fmt: str) -> tuple[str, tuple[str, ...]]:
    """(the regular expression a value of `fmt` matches in full, one group per directive; the directives in
    order). DateFormatError for a directive not in DIRECTIVES."""
    if "%" in _DIRECTIVE.sub("", fmt):
        raise DateFormatError(
            f"date format {fmt!r} has a directive that is not read in the graph (only "
            f"{' '.join(DIRECTIVES)}): change the schema's time_domain.string_format or remove it"
        )
    pieces = re.split(f"({_DIRECTIVE.pattern})", fmt)
    pattern = "".join(f"({DIRECTIVES[p][1]})" if p in DIRECTIVES else re.escape(p) for p in pieces)
    directives = tuple(p for p in pieces if p in DIRECTIVES)
    return pattern + ("Z?" if "%S" in directives else ""), directives


def derived_features(fmt: str) -> tuple[str, ...]:
    """The calendar features `date_features` derives from values of `fmt`: those its fields carry."""
    fields = {DIRECTIVES[d][0] for d in date_pattern(fmt)[1]}
    wanted = {"month": "month", "day_of_year": "day", "weekday": "day", "hour": "hour"}
    return ("year", *(name for name, field in wanted.items() if field in fields))


def _days_in_month(year, month):
    leap = tf.logical_and(
        tf.equal(year % 4, 0), tf.logical_or(tf.not_equal(year % 100, 0), tf.equal(year % 400, 0))
    )
    lengths = tf.constant([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], tf.int64)
    return tf.gather(lengths, tf.clip_by_value(month, 1, 12) - 1) + tf.cast(
        tf.logical_and(leap, tf.equal(month, 2)), tf.int64
    )


def days_from_civil(year, month, day):
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`), int64."""
    year = year - tf.cast(month <= 2, tf.int64)
    era = tf.math.floordiv(year, 400)
    year_of_era = year - era * 400
    day_of_year = (153 * (month + tf.where(month > 2, tf.constant(-3, tf.int64), 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def parse_dates(values: tf.Tensor, fmt: str) -> tuple[dict[str, tf.Tensor], tf.Tensor, tf.Tensor]:
    """Reads a [n] string tensor of `fmt`: (field -> [n] int64, every field of _DEFAULTS; [n] bool: the
    value is present (not empty); [n] bool: present and a valid date of `fmt`). Absent and invalid values
    read as 1970-01-01 00:00:00."""
    pattern, directives = date_pattern(fmt)
    present = tf.not_equal(values, "")
    matched = tf.strings.regex_full_match(values, pattern)
    parsed, valid = dict(_DEFAULTS), matched
    for index, directive in enumerate(directives, start=1):
        field, _, low, high = DIRECTIVES[directive]
        text = tf.where(matched, tf.strings.regex_replace(values, f"^{pattern}$", f"\\{index}"), "0")
        number = tf.strings.to_number(text, tf.int64)
        valid = tf.logical_and(valid, tf.logical_and(number >= low, number <= high))
        parsed[field] = number
    parsed = {field: tf.broadcast_to(tf.cast(v, tf.int64), tf.shape(values)) for field, v in parsed.items()}
    valid = tf.logical_and(valid, parsed["day"] <= _days_in_month(parsed["year"], parsed["month"]))
    # Absent and invalid values: the defaults (tf.where broadcasts them).
    parsed = {
        field: tf.where(valid, v, tf.constant(_DEFAULTS[field], tf.int64)) for field, v in parsed.items()
    }
    return parsed, present, valid


def _cycle(name: str, value, period) -> dict[str, tf.Tensor]:
    angle = 2 * math.pi * tf.cast(value, tf.float32) / tf.cast(period, tf.float32)
    return {f"{name}_sin": tf.sin(angle), f"{name}_cos": tf.cos(angle)}


def date_features(values: tf.Tensor, fmt: str) -> tuple[dict[str, tf.Tensor], tf.Tensor]:
    """(feature name -> [n] float32 calendar feature, before any scaling; [n] bool: the value is present).
    An absent value's cyclic features are 0 (neither sine nor cosine of any angle: no season); its year is
    the fallback's, which Transform replaces with the mean. An invalid date is an error: the gates refuse
    it before Transform (`invalid_dates`), and the served model raises InvalidArgumentError naming the
    format, never a silent default."""
    parsed, present, valid = parse_dates(values, fmt)
    check = tf.debugging.Assert(
        tf.reduce_all(tf.logical_or(tf.logical_not(present), valid)),
        [f"a value is not a date or time of the format {fmt}:", tf.boolean_mask(values, present & ~valid)],
        summarize=3,
    )
    with tf.control_dependencies([check]):
        year = tf.identity(parsed["year"])
    derived = derived_features(fmt)
    features = {"year": tf.cast(year, tf.float32)}
    cyclic = {}
    if "month" in derived:
        cyclic.update(_cycle("month", parsed["month"] - 1, 12))
    if "day_of_year" in derived:
        days = days_from_civil(parsed["year"], parsed["month"], parsed["day"])
        first = tf.ones_like(parsed["month"])
        start = days_from_civil(parsed["year"], first, first)
        year_days = days_from_civil(parsed["year"] + 1, first, first) - start
        cyclic.update(_cycle("day_of_year", days - start, year_days))
        # 1970-01-01 was a Thursday: Monday is 0.
        cyclic.update(_cycle("weekday", tf.math.floormod(days + 3, 7), 7))
    if "hour" in derived:
        cyclic.update(_cycle("hour", parsed["hour"] * 60 + parsed["minute"], 24 * 60))
    features.update({name: tf.where(present, value, 0.0) for name, value in cyclic.items()})
    return features, present


def invalid_dates(values, fmt: str) -> list[int]:
    """The positions, eagerly, of the values (strings or bytes; an empty one or None is absent) that are
    not dates or times of `fmt`."""
    tensor = tf.constant(["" if v is None else v for v in values], tf.string)
    _, present, valid = parse_dates(tensor, fmt)
    return tf.where(present & ~valid)[:, 0].numpy().tolist()
