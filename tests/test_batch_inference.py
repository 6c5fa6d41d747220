"""Batch inference in the pipeline (`PipelineConfig.inference_data`): the body-mass task's runs score 200
unlabelled rows at their end, with the version they pushed, or, refused, with the version already served;
the predictions equal `python -m pipeline predict` on the same data with the same version, byte for byte.
The SERVING-environment gate on real TFDV statistics, and nothing scored when nothing is served."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import INFERENCE_IMAGES, INFERENCE_ROWS
from tests.test_cli_e2e import cli


def assert_scored_as_predict_scores(run, task: str, rows: int, tmp_path) -> Path:
    """The run's predictions: `rows` rows scored by the version it pushed, byte for byte what `predict
    --version` of that version writes for the same data. Returns the predictions file."""
    pushed = int(Path(run.summary.pushed_destination).name)
    predictions = run.summary.predictions
    assert (predictions.rows, predictions.model_version) == (rows, pushed)
    result = cli(
        "predict", "--data-root", run.config.inference_data, "--output", str(tmp_path / "p.csv"), "--task",
        task, "--output-root", run.config.output_root, "--version", str(pushed),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert Path(predictions.path).read_bytes() == (tmp_path / "p.csv").read_bytes()
    return Path(predictions.path)


@pytest.mark.e2e
def test_a_pushed_candidate_scores_the_inference_data_as_predict_does(body_mass_run, tmp_path):
    summary = body_mass_run.summary
    assert summary.node_states["BatchInference"] == "COMPLETE"
    assert summary.node_states.get("BatchInferenceServed") != "COMPLETE"
    path = assert_scored_as_predict_scores(body_mass_run, "penguin_body_mass", INFERENCE_ROWS, tmp_path)
    header = path.read_text().splitlines()[0]
    assert header.endswith('"predicted_body_mass_g"') and 'body_mass_g",' not in header


@pytest.mark.e2e
def test_images_are_scored_in_the_pipeline_as_predict_scores_them(digits_run, tmp_path):
    summary = digits_run.summary
    assert summary.node_states["InferenceExampleGen"] == "COMPLETE"
    rows = assert_scored_as_predict_scores(digits_run, "digits", INFERENCE_IMAGES, tmp_path).read_text()
    rows = rows.splitlines()
    assert rows[0].startswith('"source_file","record","file","predicted_label"'), rows[0]
    assert [row.split(",")[2] for row in rows[1:4]] == ['"digit-00.png"', '"digit-01.png"', '"digit-02.png"']


@pytest.mark.e2e
def test_a_refused_candidate_leaves_the_served_version_to_score(body_mass_run, crippled_body_mass_run):
    assert crippled_body_mass_run.summary.blessed is False
    states = crippled_body_mass_run.summary.node_states
    assert states["BatchInferenceServed"] == "COMPLETE" and states.get("BatchInference") != "COMPLETE"
    predictions = crippled_body_mass_run.summary.predictions
    assert predictions.model_version == body_mass_run.summary.predictions.model_version
    first = Path(body_mass_run.summary.predictions.path).read_bytes()
    assert Path(predictions.path).read_bytes() == first


@pytest.mark.e2e
def test_the_report_lists_the_predictions(body_mass_run):
    html = Path(body_mass_run.summary.report).read_text()
    assert "batch inference" in html
    assert (
        f"{INFERENCE_ROWS} rows scored by version {body_mass_run.summary.predictions.model_version}" in html
    )


def test_nothing_is_scored_when_nothing_is_served(tmp_path):
    from components.batch_inference import NOT_SERVED, score_served

    (tmp_path / "serving").mkdir()
    assert score_served(str(tmp_path / "serving"), str(tmp_path), str(tmp_path / "out"), []) == {
        "rows": 0,
        "note": NOT_SERVED,
    }
    assert not (tmp_path / "out").exists()


def _statistics(tmp_path: Path, text: str) -> str:
    """TFDV's statistics of a CSV, laid out as StatisticsGen writes them (`Split-inference/`)."""
    import tensorflow_data_validation as tfdv

    tmp_path.mkdir()
    (tmp_path / "rows.csv").write_text(text)
    statistics = tfdv.generate_statistics_from_csv(str(tmp_path / "rows.csv"))
    uri = tmp_path / "statistics"
    (uri / "Split-inference").mkdir(parents=True)
    (uri / "Split-inference" / "FeatureStats.pb").write_bytes(statistics.SerializeToString())
    return str(uri)


def test_the_inference_gate_checks_the_serving_environment(tmp_path):
    from components.batch_inference import serving_anomalies
    from components.data_gate import gate_message
    from tests.conftest import REPO_ROOT

    schema = str(REPO_ROOT / "schemas" / "penguins" / "schema.pbtxt")
    header = "island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year\n"
    good = header + "Biscoe,45.1,14.5,215.0,5000.0,female,2008\nDream,39.5,17.4,186.0,3800.0,male,2009\n"
    # The label (species) absent is what inference data looks like: no anomaly.
    assert serving_anomalies(_statistics(tmp_path / "good", good), schema) == {}
    bad = good.replace("Dream", "Atlantis")
    summary = serving_anomalies(_statistics(tmp_path / "bad", bad), schema)
    assert list(summary) == ["island"] and "Atlantis" in summary["island"]
    message = gate_message(summary, "Inference data gate", "nothing was scored")
    assert message.startswith("Inference data gate: 1 anomalous feature(s), nothing was scored. island: ")


def _damaged_image(directory: Path) -> Path:
    from pipeline.images import image_example, write_records

    return write_records(directory / "images.tfrecord.gz", [image_example(b"\x89PNG not really", None)])


def _unknown_column(directory: Path) -> Path:
    path = directory / "new.csv"
    path.write_text("island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year,colour\n"
                    "Torgersen,39.1,18.7,181,3750,male,2007,grey\n")  # fmt: skip
    return path


@pytest.mark.e2e
@pytest.mark.parametrize(
    "task, write, message",
    [
        ("digits", _damaged_image, "images.tfrecord.gz, record 0: feature 'image' is not a PNG image"),
        ("penguin_species", _unknown_column, "new.csv: column(s) colour are not in the schema"),
    ],
)
def test_bad_inference_data_stops_the_run_before_anything_runs(task, write, message, tmp_path):
    (tmp_path / "score").mkdir()
    write(tmp_path / "score")
    out = tmp_path / "out"
    result = cli(
        "run", "--task", task, "--inference-data", str(tmp_path / "score"), "--output-root", str(out)
    )
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and str(tmp_path / "score") in line and message in line, line
    assert not (out / "pipeline").exists() and not (out / "serving_model").exists()
