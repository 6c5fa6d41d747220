"""The run report's parts that need no run: finding the run, the thresholds as TFMA stores them, the drift
measure, the training curves and a page's self-containment."""

from __future__ import annotations

import json

import pytest
import tensorflow_data_validation as tfdv
from google.protobuf import json_format

from pipeline import report
from pipeline.config import DEFAULT_SCHEMA, PipelineConfig
from pipeline.data import generate_penguins
from pipeline.pipeline import eval_config
from pipeline.tasks import task_config


def test_no_run_yet_is_a_report_error(tmp_path):
    config = PipelineConfig(output_root=str(tmp_path))
    with pytest.raises(
        report.ReportError, match=r"no run of 'penguin' yet: .*metadata.sqlite does not exist"
    ):
        report.find_run(config)


def write_eval_config(directory, config) -> str:
    """An eval_config.json as TFMA writes it next to its results."""
    directory.mkdir()
    stored = {"evalConfig": json_format.MessageToDict(eval_config(config)), "version": "0.46.0"}
    (directory / "eval_config.json").write_text(json.dumps(stored))
    return str(directory)


def test_thresholds_are_described_by_metric_name(tmp_path):
    species = write_eval_config(tmp_path / "species", task_config("penguin_species", max_accuracy_drop=0.02))
    assert report.thresholds(species) == [
        "sparse_categorical_accuracy (overall): >= 0.9, at most 0.02 below the baseline's"
    ]
    mass = write_eval_config(tmp_path / "mass", task_config("penguin_body_mass"))
    assert report.thresholds(mass) == [
        "root_mean_squared_error (overall): <= 450, at most 25 above the baseline's",
        "mean_absolute_error (overall): at most 0 above the baseline's",
    ]
    pairs = write_eval_config(tmp_path / "pairs", task_config("digits_similarity"))
    assert report.thresholds(pairs) == ["pair_accuracy (overall): >= 0.9, at most 0.01 below the baseline's"]


def test_drift_is_measured_per_feature_with_the_gates_comparators():
    schema = tfdv.load_schema_text(str(DEFAULT_SCHEMA))
    same = tfdv.generate_statistics_from_dataframe(generate_penguins(3000, seed=1))
    again = tfdv.generate_statistics_from_dataframe(generate_penguins(3000, seed=2))
    drifted = tfdv.generate_statistics_from_dataframe(generate_penguins(3000, seed=3, drift=True))
    calm = report.drift_distances(again, same, schema)
    moved = report.drift_distances(drifted, same, schema)
    assert calm["island"].startswith("L-inf ") and calm["bill_length_mm"].startswith("JS ")
    value = lambda found, name: float(found[name].split()[1])  # noqa: E731
    assert value(calm, "island") < 0.05 and value(moved, "island") > 0.3
    assert value(calm, "bill_length_mm") < 0.05 and value(moved, "bill_length_mm") > 0.15
    assert abs(value(moved, "body_mass_g") - value(calm, "body_mass_g")) < 0.05  # not drifted


def test_training_curves_are_an_embedded_png():
    import base64

    png = report.training_curves({"loss": [1.0, 0.5, 0.4], "val_loss": [1.1, 0.6, 0.5], "lr": [0.1] * 3})
    assert base64.b64decode(png).startswith(b"\x89PNG")
    assert report.training_curves({"lr": [0.1]}) is None


def test_spans_are_named_as_a_range():
    from pipeline.report.reading import _spans

    assert _spans(None) == "the whole data directory (no spans)"
    assert (_spans([3, 3]), _spans([1, 4])) == ("3", "1-4")


def test_empty_cells_count_as_examples_without_a_value():
    """CsvExampleGen writes an empty cell as an empty value list, which TFDV counts as present."""
    import pyarrow as pa
    from tensorflow_data_validation.statistics import stats_impl, stats_options

    from pipeline.report import share_without_value

    batch = pa.RecordBatch.from_arrays(
        [pa.array([[1.0], [], [3.0], [], None], pa.list_(pa.float32()))], ["fare"]
    )
    statistics = stats_impl.generate_statistics_in_memory(batch, stats_options.StatsOptions())
    common = statistics.datasets[0].features[0].num_stats.common_stats
    assert (common.num_missing, common.num_non_missing) == (1, 4)  # TFDV's own count: one missing
    assert share_without_value(common) == 3 / 5


def test_rows_without_a_label_are_named_on_the_page_and_as_the_data_gates_refusal():
    from pipeline.run_summary import RunSummary

    summary = RunSummary(run_id="r", node_states={"CsvExampleGen": "COMPLETE"}, unlabelled=(8, 406, ["mpg"]))
    page = report.Report(config=PipelineConfig(), summary=summary, splits={"train": 265, "eval": 133})
    page.outcome = summary.outcome()
    assert "<p>8 of 406 rows have no mpg: not used for training or evaluation.</p>" in report.render_report(
        page
    )
    summary.node_states["DataGate"] = "FAILED"
    assert summary.outcome() == (
        "Stopped by the data gate: 8 of 406 rows have no mpg: not used for training or evaluation, more than "
        "allowed; nothing was trained"
    )
    assert RunSummary(run_id="r", unlabelled=(0, 406, ["mpg"])).unlabelled_note is None


def test_markup_in_a_users_data_stays_text_and_the_outcome_reads_as_in_the_terminal(tmp_path):
    """The templates escape every value: a column named like a script, a category with an ampersand and a
    run id with angle brackets are shown as written, never as markup; the page's outcome is the sentence
    the terminal's summary prints."""
    import io

    from pipeline.cli import print_summary
    from pipeline.report.reading import Feature
    from pipeline.run_summary import RunSummary

    summary = RunSummary(
        run_id="<b>run</b>",
        node_states={"Trainer": "COMPLETE", "Evaluator": "COMPLETE", "Pusher": "COMPLETE"},
        blessed=True,
        pushed_destination=f"{tmp_path}/serving_model/17",
    )
    page = report.Report(
        config=PipelineConfig(output_root=str(tmp_path)), summary=summary, splits={"train": 2}
    )
    page.outcome = summary.outcome()
    page.features = [
        Feature("<script>alert(1)</script>", "string", 0.0, "2 values; most frequent: a & b (2)")
    ]
    page.anomalies = {"<img src=x onerror=alert(1)>": "Unexpected string values: <i>x</i>"}
    html = report.render_report(page)
    assert (
        "<script>" not in html
        and "<img src=x" not in html
        and "<i>x</i>" not in html
        and "<b>run" not in html
    )
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "a &amp; b (2)" in html
    assert "&lt;b&gt;run&lt;/b&gt;" in html
    card = report.render_model_card(page)
    assert "<script>" not in card and "&lt;script&gt;" in card
    terminal = io.StringIO()
    print_summary(terminal, summary, page.config, {})
    sentence = f"Blessed and pushed: {tmp_path}/serving_model/17 (version 17)"
    assert sentence in terminal.getvalue().splitlines() and f"{sentence}." in html
