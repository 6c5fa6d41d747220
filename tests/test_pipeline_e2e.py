"""End to end: real TFX components, real Beam, a real SQLite ML Metadata store, on the penguins data."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DATA_STAGE
from tests.test_cli_e2e import cli

REPO_ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.e2e

SCHEMA = str(REPO_ROOT / "schemas" / "penguins" / "schema.pbtxt")

# The local pipeline's nodes: the Kubeflow one resolves its baseline differently (tests/test_kubeflow.py).
ALL_NODES = {
    *DATA_STAGE,
    "Transform",
    "Trainer",
    "latest_blessed_model_resolver",
    "Evaluator",
    "ServingCheck",
    "Pusher",
}
UPSTREAM_OF_EVALUATOR = ALL_NODES - {"latest_blessed_model_resolver", "Evaluator", "ServingCheck", "Pusher"}


def query_served_model(config, model_dir: str, *labels: str) -> dict:
    """Runs tests/serving_client.py in a fresh process, outside the repository, on the eval split."""
    examples = os.path.join(config.pipeline_root, "CsvExampleGen", "examples", "*", "Split-eval", "*")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "tests" / "serving_client.py"),
            model_dir,
            examples,
            *(labels or ("species",)),
        ],
        capture_output=True,
        text=True,
        cwd=config.output_root,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_first_run_executes_every_component_and_pushes(first_run):
    assert first_run.summary.node_states == {node: "COMPLETE" for node in ALL_NODES}
    assert first_run.summary.blessed is True
    assert len(first_run.serving_versions) == 1
    assert first_run.summary.pushed_destination == os.path.join(
        first_run.config.serving_dir, first_run.serving_versions[0]
    )


def test_transform_writes_no_analyzer_cache_that_no_run_reads(first_run):
    outputs = set(os.listdir(os.path.join(first_run.config.pipeline_root, "Transform")))
    assert {"transform_graph", "transformed_examples"} <= outputs
    assert "updated_analyzer_cache" not in outputs


def test_pushed_model_serves_serialized_examples_accurately(first_run):
    model_dir = os.path.join(first_run.config.serving_dir, first_run.serving_versions[0])
    result = query_served_model(first_run.config, model_dir)

    assert result["project_imported"] == []
    assert result["count"] >= 80  # a third of the 344 rows, by hash
    assert result["accuracy"] >= 0.9
    assert result["classes_seen"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert all(abs(s - 1.0) < 1e-4 for s in result["probability_sums"])


def test_pushed_model_carries_tf_serving_warmup_requests(first_run):
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    model_dir = os.path.join(first_run.config.serving_dir, first_run.serving_versions[0])
    warmup = os.path.join(model_dir, "assets.extra", "tf_serving_warmup_requests")
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(warmup)]
    assert len(logs) == 10
    for log in logs:
        examples = tf.make_ndarray(log.predict_log.request.inputs["examples"])
        example = tf.train.Example.FromString(examples[0])
        assert "species" not in example.features.feature and "island" in example.features.feature


def trainer_record(run) -> tuple[Path, dict]:
    """The Trainer's run directory and its training.json."""
    run_dir = Path(run.summary.outputs["Trainer"]["model_run"])
    return run_dir, json.loads((run_dir / "training.json").read_text())


def epoch_values(run_dir: Path, split: str, tag: str) -> list[float]:
    """The per-epoch values TensorBoard recorded for `tag` under `split` (train, validation)."""
    import tensorflow as tf

    values = {}
    for path in (run_dir / split).glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == tag:
                    values[event.step] = float(tf.make_ndarray(value.tensor))
    return [values[step] for step in sorted(values)]


def test_tensorboard_logs_written_by_trainer(first_run):
    run_dir, record = trainer_record(first_run)
    history = record["history"]
    assert epoch_values(run_dir, "train", "epoch_loss") == pytest.approx(history["loss"], rel=1e-6)
    assert epoch_values(run_dir, "validation", "epoch_loss") == pytest.approx(history["val_loss"], rel=1e-6)


def test_second_run_reuses_cache_and_does_not_push_again(first_run, second_run):
    states = second_run.summary.node_states
    assert {n for n in UPSTREAM_OF_EVALUATOR if states.get(n) != "CACHED"} == set()
    # The Evaluator has a new input, the first run's blessed model as baseline, so it runs again; that
    # baseline is the candidate itself, so it evaluates the model once instead of comparing it with itself.
    assert states["Evaluator"] == "COMPLETE"
    evaluation = second_run.summary.outputs["Evaluator"]["evaluation"]
    specs = json.loads(Path(evaluation, "eval_config.json").read_text())["evalConfig"]["modelSpecs"]
    assert len(specs) == 1
    assert second_run.summary.pushed_destination is None
    assert second_run.summary.already_served == first_run.summary.pushed_destination
    assert second_run.serving_versions == first_run.serving_versions


def test_code_fingerprint_change_reruns_transform_and_trainer_only(second_run, edited_code_run):
    states = edited_code_run.summary.node_states
    assert states["Transform"] == "COMPLETE"
    assert states["Trainer"] == "COMPLETE"
    for node in DATA_STAGE:
        assert states[node] == "CACHED", node


def test_crippled_candidate_is_not_blessed_and_not_pushed(edited_code_run, crippled_run):
    states = crippled_run.summary.node_states
    assert states["Trainer"] == "COMPLETE"
    assert states["Transform"] == "CACHED"
    assert states["Evaluator"] == "COMPLETE"
    assert crippled_run.summary.blessed is False
    assert crippled_run.summary.pushed_destination is None
    assert "Pusher" not in states or states["Pusher"] != "COMPLETE"
    assert crippled_run.serving_versions == edited_code_run.serving_versions

    from pipeline.results import evaluation

    failures = evaluation(crippled_run.summary.outputs["Evaluator"]["evaluation"]).failures
    assert any(f.startswith("sparse_categorical_accuracy") and "needs" in f for f in failures), failures

    served = os.path.join(crippled_run.config.serving_dir, crippled_run.serving_versions[-1])
    assert query_served_model(crippled_run.config, served)["accuracy"] >= 0.9


def test_a_model_that_cannot_serve_is_not_pushed(crippled_run, unservable_run):
    states = unservable_run.summary.node_states
    assert states["Evaluator"] == "COMPLETE" and unservable_run.summary.blessed is True
    assert states["ServingCheck"] == "FAILED"
    assert "Pusher" not in states
    assert "serving_default failed on examples without the label" in unservable_run.error
    assert "species" in unservable_run.error
    assert unservable_run.serving_versions == crippled_run.serving_versions


def test_the_custom_training_loop_trains_a_model_that_is_blessed_and_served(custom_loop_run):
    states = custom_loop_run.summary.node_states
    assert states["Transform"] == "CACHED" and states["Trainer"] == "COMPLETE"
    assert custom_loop_run.summary.blessed is True
    served = os.path.join(custom_loop_run.config.serving_dir, custom_loop_run.serving_versions[-1])
    assert query_served_model(custom_loop_run.config, served)["accuracy"] >= 0.9

    # The loop honoured the callbacks: TensorBoard curves per epoch for training and validation.
    run_dirs = sorted(Path(custom_loop_run.config.pipeline_root, "Trainer", "model_run").iterdir())
    import tensorflow as tf

    tags = set()
    for path in run_dirs[-1].rglob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags.update(f"{path.parent.name}/{v.tag}" for v in event.summary.value)
    assert {"train/epoch_loss", "validation/epoch_loss", "train/epoch_probabilities_accuracy"} <= tags
    # Trained to the end: the resume checkpoints are gone.
    assert not list(Path(custom_loop_run.config.pipeline_root, "Trainer", "checkpoints").glob("*/checkpoint"))


def test_detect_overfitting_stops_a_pipeline_runs_training(overfitting_stopped_run):
    """A threshold a healthy run passes within a few epochs (val_loss / loss > 0.2): DetectOverfitting stops
    the Trainer after the first epoch whose ratio passes it, which training.json and the run report say."""
    _, record = trainer_record(overfitting_stopped_run)
    history = record["history"]
    ratios = [val / train for val, train in zip(history["val_loss"], history["loss"], strict=True)]
    epochs_run = len(ratios)
    assert epochs_run < record["epochs_planned"]
    assert ratios[-1] > 0.2 and all(ratio <= 0.2 for ratio in ratios[:-1]), ratios
    assert record["stopped_by"] == {"DetectOverfitting": epochs_run}
    html = Path(overfitting_stopped_run.summary.report).read_text()
    assert f"DetectOverfitting stopped training after epoch {epochs_run}" in html


def test_body_mass_regression_serves_grams_within_its_gate(body_mass_run):
    summary = body_mass_run.summary
    assert summary.blessed is True and summary.pushed_destination
    result = query_served_model(body_mass_run.config, summary.pushed_destination, "body_mass_g")
    assert result["project_imported"] == []
    assert result["rmse"] < 450  # grams, the task's gate; the label's standard deviation is about 800
    low, high = result["prediction_range"]
    assert 2500 < low < high < 6500  # grams, not standardized units


def test_body_mass_crippled_candidate_is_not_blessed(body_mass_run, crippled_body_mass_run):
    assert crippled_body_mass_run.summary.node_states["Trainer"] == "COMPLETE"
    assert crippled_body_mass_run.summary.blessed is False
    assert crippled_body_mass_run.serving_versions == body_mass_run.serving_versions


def test_tuner_searches_and_the_trainer_trains_the_best_values(tuned_body_mass_run):
    states = tuned_body_mass_run.summary.node_states
    assert states["Transform"] == "CACHED"
    assert {states[n] for n in ("Tuner", "Trainer", "Evaluator")} == {"COMPLETE"}

    outputs = tuned_body_mass_run.summary.outputs
    # One record per trial: its values and its score (validation RMSE in grams), best first.
    trials = json.loads(Path(outputs["Tuner"]["tuner_results"], "tuner_results.json").read_text())
    assert len(trials) == 2 and 0 < trials[0]["score"] <= trials[1]["score"]
    best = json.loads(Path(outputs["Tuner"]["best_hyperparameters"], "best_hyperparameters.txt").read_text())
    values = best["values"]
    assert values == {name: trials[0][name] for name in ("learning_rate", "hidden_units", "huber_threshold")}

    import tensorflow as tf

    model = tf.saved_model.load(str(Path(outputs["Trainer"]["model"], "Format-Serving")))
    hidden = [v for v in model.variables if "hidden_0" in v.name]
    assert hidden and all(v.shape[-1] == values["hidden_units"] for v in hidden if len(v.shape) == 2)


def test_two_headed_model_serves_both_outputs_within_their_gates(multi_run):
    summary = multi_run.summary
    assert summary.node_states == {node: "COMPLETE" for node in ALL_NODES}
    assert summary.blessed is True and summary.pushed_destination
    result = query_served_model(multi_run.config, summary.pushed_destination, "species", "body_mass_g")
    assert result["project_imported"] == []
    assert result["outputs"] == [
        "body_mass_g_predictions",
        "species_class_ids",
        "species_classes",
        "species_probabilities",
    ]
    species, mass = result["heads"]["species"], result["heads"]["body_mass_g"]
    assert species["accuracy"] >= 0.9 and species["classes_seen"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert mass["rmse"] < 450  # grams, the task's gate
    assert 2500 < mass["prediction_range"][0] < mass["prediction_range"][1] < 6500

    from pipeline.results import evaluation

    evaluated = evaluation(summary.outputs["Evaluator"]["evaluation"])
    assert evaluated.candidate["species_probabilities/sparse_categorical_accuracy"] >= 0.9
    assert evaluated.candidate["species_probabilities/f1_score"] >= 0.85
    assert evaluated.candidate["body_mass_g_predictions/root_mean_squared_error"] < 450
    assert evaluated.candidate["body_mass_g_predictions/mean_absolute_error"] < 400


def test_two_headed_crippled_candidate_is_not_blessed_and_the_failed_outputs_are_named(
    multi_run, crippled_multi_run
):
    assert crippled_multi_run.summary.node_states["Trainer"] == "COMPLETE"
    assert crippled_multi_run.summary.blessed is False
    assert crippled_multi_run.serving_versions == multi_run.serving_versions

    from pipeline.results import evaluation

    failures = evaluation(crippled_multi_run.summary.outputs["Evaluator"]["evaluation"]).failures
    assert any(f.startswith("body_mass_g_predictions/root_mean_squared_error") for f in failures), failures


def test_training_logs_show_the_catalogue_at_work(first_run):
    """The species task's callbacks ran across epochs: per-epoch batch timings, the F1 metric."""
    run_dir, record = trainer_record(first_run)
    assert record["callbacks"] == ["tensorboard", "early_stopping", "detect_overfitting", "batch_timing"]
    epochs_run = len(record["history"]["loss"])
    assert epochs_run >= 2
    # Batch timing: one line per epoch run, each over that epoch's batches.
    timings = record["batch_timing"]
    assert [epoch["batches"] for epoch in timings] == [record["steps_per_epoch"]] * epochs_run
    assert all(0 < epoch["median_ms"] <= epoch["slowest_ms"] for epoch in timings)
    html = Path(first_run.summary.report).read_text()
    assert f"median per epoch {timings[0]['median_ms']:.1f}, {timings[1]['median_ms']:.1f}" in html
    # The F1 metric, computed every epoch on training and validation batches, as TensorBoard shows it.
    history = record["history"]
    f1 = epoch_values(run_dir, "validation", "epoch_probabilities_f1_score")
    assert f1 == pytest.approx(history["val_probabilities_f1_score"], rel=1e-6) and len(f1) == epochs_run
    assert 0.8 <= f1[-1] <= 1.0


def write_broken_penguins(data_dir: Path) -> None:
    """The real table with text in a numeric column and an island outside the schema's domain."""
    from pipeline.data import write_penguins_csv

    source = write_penguins_csv(data_dir / "source")
    with open(source, newline="") as f:
        rows = list(csv.DictReader(f))
    rows[5]["flipper_length_mm"] = "unknown"
    rows[9]["island"] = "Atlantis"
    (data_dir / "broken").mkdir()
    with open(data_dir / "broken" / "penguins.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_broken_data_stops_at_the_gate(tmp_path):
    write_broken_penguins(tmp_path)
    output_root = tmp_path / "out"
    result = cli(
        "run", "--data-root", str(tmp_path / "broken"), "--schema", SCHEMA, "--output-root", str(output_root)
    )
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: Data gate: 2 anomalous feature(s)")
    assert "flipper_length_mm: Expected data of type: FLOAT but got STRING" in last_line
    assert "island: Examples contain values missing from the schema: Atlantis" in last_line

    assert not (output_root / "serving_model").exists()
    from pipeline.run_summary import latest_run

    summary = latest_run(str(output_root / "metadata.sqlite"), "broken")
    assert summary.node_states["DataGate"] == "FAILED"
    assert not {"Transform", "Trainer", "Evaluator", "Pusher"} & set(summary.node_states)

    # Its report shows the anomalies and says nothing was trained.
    from tests.test_report import assert_stopped_by_the_data_gate

    (report,) = [line.split(" ", 1)[1] for line in result.stdout.splitlines() if line.startswith("Report: ")]
    assert report.startswith(str(output_root / "reports"))
    assert_stopped_by_the_data_gate(report, summary)


def test_a_malformed_csv_row_is_named_by_file_and_line_before_anything_runs(tmp_path):
    from pipeline.data import write_penguins_csv

    source = write_penguins_csv(tmp_path / "data")
    lines = source.read_text().splitlines()
    lines[7] += ",surplus"
    source.write_text("\n".join(lines) + "\n")
    output_root = tmp_path / "out"
    result = cli(
        "run", "--data-root", str(tmp_path / "data"), "--schema", SCHEMA, "--output-root", str(output_root),
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 1
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error == (
        f"error: {source} line 8: 9 fields where the header has 8; fix the row (a stray comma, or a value "
        "with a comma that needs quotes)"
    )
    assert not (output_root / "metadata.sqlite").exists() and not (output_root / "serving_model").exists()


def test_a_removed_artifact_directory_is_recomputed_not_reused(
    tuned_body_mass_run, after_removed_artifact_run
):
    states = after_removed_artifact_run.summary.node_states
    assert states["Transform"] == "COMPLETE" and states["Trainer"] == "COMPLETE"
    rebuilt = after_removed_artifact_run.summary.outputs["Transform"]["transform_graph"]
    assert rebuilt != after_removed_artifact_run.error and Path(rebuilt).exists()
    assert not Path(after_removed_artifact_run.error).exists()  # nothing wrote into the removed directory
    # The Trainer trained anew on the rebuilt graph, and the Evaluator measured that model within the gate.
    from pipeline.results import evaluation

    assert states["Evaluator"] == "COMPLETE"
    trained = after_removed_artifact_run.summary.outputs["Trainer"]["model"]
    assert trained != tuned_body_mass_run.summary.outputs["Trainer"]["model"]
    measured = evaluation(after_removed_artifact_run.summary.outputs["Evaluator"]["evaluation"]).candidate
    assert 0 < measured["root_mean_squared_error"] <= after_removed_artifact_run.config.max_rmse


def test_a_removed_metadata_store_starts_afresh_and_keeps_the_served_versions(
    after_removed_artifact_run, after_removed_metadata_run
):
    states = after_removed_metadata_run.summary.node_states
    assert set(states.values()) <= {"COMPLETE"}  # nothing cached: a new store knows no earlier run
    config = after_removed_metadata_run.config
    # The old artifacts, which the new store would collide with, were set aside, not deleted.
    assert len(list(Path(config.output_root).glob("pipeline.orphaned-*/Trainer"))) == 1
    assert states["Evaluator"] == "COMPLETE"
    assert set(after_removed_artifact_run.serving_versions) <= set(
        after_removed_metadata_run.serving_versions
    )
