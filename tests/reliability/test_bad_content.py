"""Bad content in readable CSVs, judged by TFDV against the curated schema the way ExampleValidator judges
it, and reported by the data gate's message: each case names the feature and the problem."""

from __future__ import annotations

import pandas as pd
import pytest
import tensorflow_data_validation as tfdv

from components.data_gate import anomaly_summary, gate_message
from pipeline.config import DEFAULT_SCHEMA


def penguins(rows: int = 40) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "species": ["Adelie", "Gentoo"] * (rows // 2),
            "island": ["Biscoe", "Dream"] * (rows // 2),
            "bill_length_mm": [39.1, 46.5] * (rows // 2),
            "bill_depth_mm": [18.7, 14.3] * (rows // 2),
            "flipper_length_mm": [181.0, 217.0] * (rows // 2),
            "body_mass_g": [3750.0, 5200.0] * (rows // 2),
            "sex": ["male", "female"] * (rows // 2),
            "year": [2007, 2008] * (rows // 2),
        }
    )


def gate(frame: pd.DataFrame) -> str:
    schema = tfdv.load_schema_text(str(DEFAULT_SCHEMA))
    anomalies = tfdv.validate_statistics(tfdv.generate_statistics_from_dataframe(frame), schema)
    return gate_message(anomaly_summary({"train": anomalies}))


def test_clean_rows_raise_nothing():
    schema = tfdv.load_schema_text(str(DEFAULT_SCHEMA))
    statistics = tfdv.generate_statistics_from_dataframe(penguins())
    assert anomaly_summary({"train": tfdv.validate_statistics(statistics, schema)}) == {}


def with_value(column: str, value, row: int = 3) -> pd.DataFrame:
    frame = penguins()
    frame[column] = frame[column].astype(object)
    frame.loc[row, column] = value
    return frame


@pytest.mark.parametrize(
    "frame, feature, problem",
    [
        (with_value("flipper_length_mm", 999.0), "flipper_length_mm", "Unexpectedly high value: 999>250"),
        (
            with_value("island", "Atlantis"),
            "island",
            "Examples contain values missing from the schema: Atlantis",
        ),
        (penguins().drop(columns=["year"]), "year", "Column is completely missing"),
        (with_value("year", None, row=slice(None)), "year", "The feature was not present in any examples"),
    ],
    ids=["out-of-range", "new-category", "required-column-absent", "required-values-empty"],
)
def test_each_bad_content_case_is_named_by_the_gate(frame, feature, problem):
    message = gate(frame)
    assert message.startswith("Data gate: 1 anomalous feature(s), nothing was trained or pushed.")
    assert f"{feature}: " in message and problem in message
    assert message.endswith(
        "Fix these rows in the input data, or update the curated schema if the change is intended."
    )
