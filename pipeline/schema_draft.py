"""Drafts a schema from a CSV directory for the user to curate (`python -m pipeline schema`)."""

from __future__ import annotations

import datetime
import os
import re

import pyarrow as pa
import pyarrow.compute as pc
import tensorflow_data_validation as tfdv
from tensorflow_data_validation.statistics import stats_impl, stats_options
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from components.csv_example_gen import csv_header, csv_reader, infer_column_types, missing_or_list
from pipeline.config import IDENTIFIER_SHARE, IDENTIFIER_TAG
from pipeline.csv_check import InputDataError, check_csv, data_files, require_files
from pipeline.task import infer_task, label_feature
from trainer_module.dates import derived_features

TRAINING, SERVING = "TRAINING", "SERVING"


def _relax_optional_value_counts(schema: schema_pb2.Schema) -> None:
    """CsvExampleGen writes an empty CSV field as an empty value list, which TFDV's CSV reader counts as
    missing: a feature that is sometimes empty must accept zero values, or its own data is an anomaly."""
    for feature in schema.feature:
        if feature.presence.min_fraction < 1.0 and feature.HasField("value_count"):
            feature.value_count.ClearField("min")


def identifier_columns(
    table: pa.Table, types: dict, label: str, share: float = IDENTIFIER_SHARE
) -> dict[str, float]:
    """String columns (never numeric ones, never the label) in which at least `share` of the filled-in rows
    hold a value seen only once: name -> that share. `table`: one list per cell, as ExampleGen writes it."""
    found = {}
    for name in table.column_names:
        if name == label or types.get(name) != pa.string():
            continue
        values = pc.list_flatten(table.column(name))
        if not len(values):
            continue
        counts = pc.value_counts(values).field("counts")
        once = pc.sum(pc.equal(counts, 1)).as_py() or 0
        if once >= share * len(values):
            found[name] = once / len(values)
    return found


# The date and time formats the draft recognises (strptime's notation, as TFMD's time_domain records it),
# most specific first, each with the pattern its values match. A time-zone offset is not read.
DATE_FORMATS = (
    ("%Y-%m-%dT%H:%M:%S", r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z?"),
    ("%Y-%m-%d %H:%M:%S", r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}"),
    ("%Y-%m-%d", r"\d{4}-\d{2}-\d{2}"),
    ("%Y/%m/%d", r"\d{4}/\d{2}/\d{2}"),
    ("%Y-%m", r"\d{4}-\d{2}"),
    ("%d/%m/%Y", r"\d{1,2}/\d{1,2}/\d{4}"),
    ("%m/%d/%Y", r"\d{1,2}/\d{1,2}/\d{4}"),
)
DAY_OR_MONTH_FIRST = ("%d/%m/%Y", "%m/%d/%Y")
_OFFSET = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?(\.\d+)?[+-]\d{2}:?\d{2}")


def date_format(values: list[str]) -> tuple[str | None, str | None]:
    """(the format every value is a valid date or time of, or None; why not, when the values look like
    dates that cannot be read unambiguously). Day-first and month-first dates are told apart by a day past
    12; leap days are checked."""
    if not values:
        return None, None
    for fmt, pattern in DATE_FORMATS:
        if not all(re.fullmatch(pattern, v) for v in values) or not _all_parse(values, fmt):
            continue
        if fmt in DAY_OR_MONTH_FIRST and all(_all_parse(values, f) for f in DAY_OR_MONTH_FIRST):
            return None, "day and month cannot be told apart (no day past 12): left as text"
        return fmt, None
    if all(_OFFSET.fullmatch(v) for v in values):
        return None, "date-times with a time-zone offset are not read: left as text"
    return None, None


def _all_parse(values: list[str], fmt: str) -> bool:
    """Every value a valid date or time of `fmt` (a trailing Z, UTC, aside)."""
    try:
        for value in values:
            datetime.datetime.strptime(value.removesuffix("Z"), fmt)
    except ValueError:
        return False
    return True


def date_columns(table: pa.Table, types: dict, label: str) -> tuple[dict[str, str], dict[str, str]]:
    """String columns whose every value is a date or time of one format (never numeric columns, never the
    label): name -> format; and name -> why a column that looks like dates was left as text."""
    formats, unread = {}, {}
    for name in table.column_names:
        if name == label or types.get(name) != pa.string():
            continue
        values = [
            v.decode("utf-8", "replace") for v in pc.unique(pc.list_flatten(table.column(name))).to_pylist()
        ]
        fmt, why = date_format(values)
        if fmt:
            formats[name] = fmt
        elif why:
            unread[name] = why
    return formats, unread


def _drop_domain(schema: schema_pb2.Schema, feature: schema_pb2.Feature) -> None:
    """No list of allowed values: every new date or id would be an anomaly."""
    if feature.domain:
        for index in reversed(range(len(schema.string_domain))):
            if schema.string_domain[index].name == feature.domain:
                del schema.string_domain[index]
        feature.ClearField("domain")


def draft_schema(
    data_root: str, label: str, identifier_share: float = IDENTIFIER_SHARE
) -> tuple[schema_pb2.Schema, statistics_pb2.DatasetFeatureStatistics]:
    """Infers a schema from every file in `data_root` with the label excluded from SERVING; date and time
    columns recognised first (their format in `time_domain.string_format`), then identifier columns tagged
    (IDENTIFIER_TAG: no model input); neither gets an enumerated domain. The files are checked (csv_check)
    and read as ExampleGen reads them, each column with the type it will have."""
    statistics, identifiers, dates = csv_statistics(data_root, label, identifier_share)
    schema = tfdv.infer_schema(statistics, infer_feature_shape=False)
    for feature in schema.feature:
        if feature.name in dates[0]:
            _drop_domain(schema, feature)  # first: time_domain is another of the feature's domains
            feature.time_domain.string_format = dates[0][feature.name]
        elif feature.name in identifiers:
            feature.annotation.tag.append(IDENTIFIER_TAG)
            _drop_domain(schema, feature)
        elif feature.name in dates[1]:
            feature.annotation.comment.append(dates[1][feature.name])
    _relax_optional_value_counts(schema)
    schema.default_environment[:] = [TRAINING, SERVING]
    feature = label_feature(schema, label)
    feature.not_in_environment.append(SERVING)
    # A training row without a label is an anomaly, whatever the sample showed.
    feature.presence.min_fraction = 1.0
    return schema, statistics.datasets[0]


def csv_statistics(
    data_root: str, label: str, identifier_share: float = IDENTIFIER_SHARE
) -> tuple[statistics_pb2.DatasetFeatureStatisticsList, dict[str, float], tuple[dict, dict]]:
    """TFDV's statistics of the CSV files of `data_root`, an empty cell counted as missing (as TFDV's own
    CSV reader counts it), its identifier columns (identifier_columns) and its date columns (date_columns).
    Read with ExampleGen's reader (pyarrow: a byte order mark, CR line endings and quoted newlines handled as
    it handles them) and typed as ExampleGen types each column."""
    paths = require_files(data_files(data_root), data_root)
    for path in paths:
        check_csv(path, {label})
    names = csv_header(paths[0])
    for path in paths[1:]:
        if csv_header(path) != names:
            raise InputDataError(
                f"{path}: its header differs from {paths[0]}'s; give every file the same columns"
            )
    types = infer_column_types(paths, names)
    read_types = {name: arrow_type or pa.string() for name, arrow_type in types.items()}
    batches = [
        pa.RecordBatch.from_arrays(
            [
                missing_or_list(column, read_types[name])
                for name, column in zip(names, batch.columns, strict=True)
            ],
            names,
        )
        for path in paths
        for batch in csv_reader(path, read_types)
    ]
    table = pa.Table.from_batches(batches).combine_chunks()
    identifiers = identifier_columns(table, types, label, identifier_share)
    return (
        stats_impl.generate_statistics_in_memory(table.to_batches()[0], stats_options.StatsOptions()),
        identifiers,
        date_columns(table, types, label),
    )


def _numeric_range(stats: statistics_pb2.FeatureNameStatistics) -> str | None:
    if stats.HasField("num_stats"):
        return f"{stats.num_stats.min:g} .. {stats.num_stats.max:g}"
    return None


def _common_stats(stats: statistics_pb2.FeatureNameStatistics) -> statistics_pb2.CommonStatistics:
    kind = stats.WhichOneof("stats")
    return getattr(stats, kind).common_stats


def review_notes(
    schema: schema_pb2.Schema, stats: statistics_pb2.DatasetFeatureStatistics, label: str
) -> list[str]:
    """What the user should check before using the draft, one line each."""
    by_name = {s.path.step[0]: s for s in stats.features if s.path.step}
    label_stats = by_name.get(label)
    distinct = (
        label_stats.string_stats.unique if label_stats and label_stats.HasField("string_stats") else None
    )
    task = infer_task(schema, label, distinct)
    label_line = f"label {label!r}: task {task}; required in TRAINING, absent in SERVING"
    empty = int(_common_stats(label_stats).num_missing) if label_stats else 0
    if empty:
        label_line += (
            f"; empty in {empty / stats.num_examples:.1%} of rows ({empty} of {int(stats.num_examples)}): "
            "those rows are left out of training and evaluation (a run stops past --max-unlabelled-share)"
        )
    notes = [label_line, f"{int(stats.num_examples)} rows, {len(schema.feature)} columns read"]
    for feature in schema.feature:
        if feature.name == label:
            continue
        kind = schema_pb2.FeatureType.Name(feature.type)
        required = "required"
        if feature.presence.min_fraction < 1.0:
            common = _common_stats(by_name[feature.name])
            empty = common.num_missing / stats.num_examples if stats.num_examples else 0.0
            required = f"may be missing (empty in {empty:.1%} of rows)"
        line = f"{feature.name}: {kind}, {required}"
        if feature.time_domain.string_format:
            fmt = feature.time_domain.string_format
            derived = ", ".join(derived_features(fmt)).replace("_", " ")
            notes.append(
                f"{line}; dates or times in the format {fmt} (time_domain): no list of allowed values, so "
                f"later dates are accepted; the model sees its {derived}; a value not of this format stops "
                "the run at its data gate"
            )
            continue
        if feature.annotation.comment:
            line += f"; {feature.annotation.comment[0]}"
        if IDENTIFIER_TAG in feature.annotation.tag:
            notes.append(
                f"{line}; an identifier (most of its values occur once, as names and ids do): no model input "
                "by default, carried into predict's output; to use it as a feature, remove its "
                f"'annotation {{ tag: \"{IDENTIFIER_TAG}\" }}'"
            )
            continue
        if feature.domain:
            domain = next(d for d in schema.string_domain if d.name == feature.domain)
            line += f"; only these values are allowed: {', '.join(domain.value)}"
        elif (observed := _numeric_range(by_name[feature.name])) is not None:
            line += f"; observed {observed}: add an int_domain/float_domain with plausible bounds"
        notes.append(line)
    notes.append(
        "Check each type, whether each column must always be present, and each list of allowed values; "
        "any row that breaks the schema will stop the pipeline at its data gate."
    )
    return notes


def write_schema(schema: schema_pb2.Schema, path: str, notes: list[str]) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tfdv.write_schema_text(schema, path)
    with open(path) as f:
        body = f.read()
    header = "".join(f"# {line}\n" for line in ["Drafted by `python -m pipeline schema`; review:"] + notes)
    with open(path, "w") as f:
        f.write(header + "\n" + body)
