"""The command line's argument handling: configuration, gates and one-line errors, without a run."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline.cli import UsageError, build_parser, config_from_args, main
from pipeline.config import DEFAULT_SCHEMA, REPO_ROOT
from tests.datasets import write_breast_cancer, write_diabetes


def run_args(*argv):
    return build_parser().parse_args(["run", *argv])


def test_defaults_run_the_bundled_penguins_task(tmp_path):
    config, gate = config_from_args(run_args("--output-root", str(tmp_path)))
    assert (config.label_key, config.task, config.num_classes) == ("species", "classification", 3)
    assert (config.pipeline_name, config.trainer.model) == ("penguin_species", "wide_and_deep")
    assert "detect_overfitting" in config.trainer.callbacks
    assert config.schema_path == str(DEFAULT_SCHEMA)
    assert config.slice_features == ("island",)
    assert gate.startswith("classification gate on 'species' (3 classes): accuracy >= 0.9;")


@pytest.fixture(scope="module")
def drafted(tmp_path_factory):
    """Breast cancer and diabetes CSVs with schemas drafted by the `schema` command."""
    root = tmp_path_factory.mktemp("cli")
    paths = {}
    for name, writer, label in [
        ("cancer", write_breast_cancer, "target"),
        ("diabetes", write_diabetes, "progression"),
    ]:
        writer(root / name)
        schema = root / f"{name}.pbtxt"
        assert (
            main(["schema", "--data-root", str(root / name), "--label", label, "--output", str(schema)]) == 0
        )
        paths[name] = (root / name, schema)
    return paths


def test_integer_label_with_two_values_is_binary_classification_with_auc(drafted, tmp_path):
    data, schema = drafted["cancer"]
    config, gate = config_from_args(
        run_args("--data-root", str(data), "--schema", str(schema), "--output-root", str(tmp_path))
    )
    assert config.label_key == "target"  # taken from the schema: the feature absent in SERVING
    assert (config.task, config.num_classes, config.is_binary) == ("classification", 2, True)
    assert config.pipeline_name == "cancer"
    # Relative to the data: 357 of the 569 tumours are benign (target 1), so always answering 1 scores
    # 0.6274; the gate asks for a quarter of that predictor's errors removed.
    assert config.min_accuracy == pytest.approx(357 / 569 + 0.25 * (1 - 357 / 569), abs=1e-4)
    assert f"accuracy >= {config.min_accuracy:g}, AUC >= 0.8" in gate
    assert gate.endswith(
        "(always predicting the most frequent class, '1', scores 0.6274: the model must remove at least 25% "
        "of its errors; --min-accuracy sets a bound)"
    )
    config, gate = config_from_args(
        run_args("--data-root", str(data), "--schema", str(schema), "--output-root", str(tmp_path),
                 "--min-accuracy", "0.95")
    )  # fmt: skip
    assert config.min_accuracy == 0.95 and "most frequent" not in gate


def test_float_label_is_regression_gated_by_the_label_spread(drafted, tmp_path):
    import pandas as pd

    data, schema = drafted["diabetes"]
    config, gate = config_from_args(
        run_args("--data-root", str(data), "--schema", str(schema), "--output-root", str(tmp_path))
    )
    spread = pd.read_csv(data / "diabetes.csv")["progression"].std(ddof=0)
    assert config.task == "regression"
    assert config.max_rmse == pytest.approx(spread)
    assert f"RMSE <= {spread:.4g}" in gate and "standard deviation" in gate


def test_gate_thresholds_can_be_overridden(drafted, tmp_path):
    data, schema = drafted["diabetes"]
    config, gate = config_from_args(
        run_args(
            "--data-root",
            str(data),
            "--schema",
            str(schema),
            "--output-root",
            str(tmp_path),
            "--max-rmse",
            "60",
            "--max-rmse-increase",
            "2.5",
        )
    )
    assert (config.max_rmse, config.max_rmse_increase) == (60.0, 2.5)
    assert "RMSE <= 60; RMSE at most 2.5 above" in gate


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--data-root", "."], "--schema is required with --data-root"),
        (["--schema", "/nonexistent.pbtxt"], "schema file /nonexistent.pbtxt does not exist"),
        (["--label", "mass"], "label column 'mass' is not in the schema"),
        (["--train-steps", "-5"], "invalid configuration: train_steps must be positive, got -5"),
        (["--tune-trials", "0"], "invalid configuration: tune_trials must be positive, got 0"),
        (["--beam-workers", "0"], "invalid configuration: Beam workers must be at least 1, got 0"),
    ],
)
def test_bad_arguments_are_one_line_usage_errors(argv, message, tmp_path):
    with pytest.raises(UsageError, match=message):
        config_from_args(run_args("--output-root", str(tmp_path), *argv))


@pytest.mark.parametrize(
    "workers, mode, args",
    [
        # One worker: no arguments at all (TFX would package itself for every Beam component otherwise);
        # Beam's defaults are the in-process mode.
        ("1", ("in_memory", 1), ()),
        ("2", ("multi_processing", 2), ("--direct_running_mode=multi_processing", "--direct_num_workers=2")),
    ],
)
def test_beam_workers_choose_the_direct_runners_mode(workers, mode, args, tmp_path):
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions

    config, _ = config_from_args(run_args("--beam-workers", workers, "--output-root", str(tmp_path)))
    assert config.beam_pipeline_args == args
    options = PipelineOptions(list(config.beam_pipeline_args)).view_as(DirectOptions)
    assert (options.direct_running_mode, options.direct_num_workers) == mode


def test_schema_that_does_not_parse(tmp_path):
    broken = tmp_path / "schema.pbtxt"
    broken.write_text("feature { name: 'a' type: FLOT }")
    with pytest.raises(UsageError, match=rf"schema file {broken} does not parse: .*FLOT"):
        config_from_args(run_args("--schema", str(broken), "--output-root", str(tmp_path)))


def test_label_missing_from_the_data(drafted, tmp_path):
    data, schema = drafted["cancer"]
    with pytest.raises(UsageError, match=r"label column 'outcome' is not in .*breast_cancer.csv"):
        config_from_args(
            run_args(
                "--data-root",
                str(data),
                "--schema",
                str(schema),
                "--label",
                "outcome",
                "--output-root",
                str(tmp_path),
            )
        )


def test_empty_data_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="holds no files"):
        config_from_args(
            run_args(
                "--data-root",
                str(tmp_path / "empty"),
                "--schema",
                str(DEFAULT_SCHEMA),
                "--output-root",
                str(tmp_path),
            )
        )


def test_schema_refuses_to_overwrite(drafted, capsys):
    data, schema = drafted["cancer"]
    assert main(["schema", "--data-root", str(data), "--label", "target", "--output", str(schema)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_body_mass_task_is_a_huber_regression_gated_in_grams(tmp_path):
    config, gate = config_from_args(run_args("--task", "penguin_body_mass", "--output-root", str(tmp_path)))
    assert (config.label_key, config.task, config.pipeline_name) == (
        "body_mass_g",
        "regression",
        "penguin_body_mass",
    )
    assert (config.trainer.loss, config.trainer.model) == ("huber", "quadratic_mlp")
    assert "RMSE <= 450" in gate


def test_task_and_data_root_exclude_each_other(tmp_path):
    with pytest.raises(UsageError, match="--task selects a bundled task"):
        config_from_args(run_args("--task", "penguin_species", "--data-root", str(tmp_path)))


def test_the_command_line_takes_task_names_from_the_registry_without_importing_tensorflow():
    """The task names are the registry's own (pipeline/tasks.py), and importing it leaves TensorFlow out:
    its import prints before the run's output is captured."""
    code = "import sys, pipeline.cli; print(sorted(m for m in ('tensorflow', 'tfx') if m in sys.modules))"
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT)
    assert imported.stdout.strip() == "[]", imported.stderr


def test_multi_task_gates_both_heads_and_tune_options_reach_the_config(tmp_path):
    config, gate = config_from_args(
        run_args("--task", "penguin_multi", "--tune", "--tune-trials", "3", "--output-root", str(tmp_path))
    )
    assert config.labels == {"species": "classification", "body_mass_g": "regression"}
    assert config.trainer.model == "multi_output"
    assert (config.tune, config.tune_trials, config.tune_steps) == (True, 3, 100)
    first, second = gate.splitlines()
    assert first.startswith("classification gate on 'species' (3 classes): accuracy >= 0.9")
    assert second.startswith("regression gate on 'body_mass_g': RMSE <= 450")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["schedule"], "pass --every INTERVAL to retrain here, or --host URL --cron EXPR for Kubeflow"),
        (["schedule", "--host", "http://localhost:8080"], "--host needs --cron"),
        (["schedule", "--every", "soon"], "interval 'soon' is not a duration"),
    ],
)
def test_schedule_needs_an_interval_or_a_kubeflow_host_and_cron(argv, message, capsys):
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: {message}")


def test_rollback_with_nothing_served_is_a_one_line_error(tmp_path, capsys):
    assert main(["rollback", "--output-root", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: no model is served from {tmp_path}/serving_model; nothing to roll back"]


def test_span_window_reaches_the_config_and_must_be_positive(tmp_path):
    config, _ = config_from_args(run_args("--span-window", "3", "--output-root", str(tmp_path)))
    assert config.span_window == 3
    with pytest.raises(UsageError, match="span_window must be positive, got 0"):
        config_from_args(run_args("--span-window", "0", "--output-root", str(tmp_path)))


def test_an_unknown_task_names_the_valid_ones(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["run", "--task", "penguin_size"])
    assert exited.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "invalid choice: 'penguin_size'" in last
    assert "penguin_species" in last and "penguin_body_mass" in last


def test_image_tasks_take_their_own_step_budget_and_a_model_option(tmp_path):
    config, gate = config_from_args(run_args("--task", "digits", "--output-root", str(tmp_path)))
    assert (config.trainer.model, config.train_steps, config.images.model_shape) == (
        "resnet",
        300,
        (32, 32, 1),
    )
    assert config.slice_features == ("label",) and config.num_classes == 10
    assert gate.startswith("classification gate on 'label' (10 classes): accuracy >= 0.9; at most 0.01 below")
    vgg, _ = config_from_args(run_args("--task", "digits", "--model", "vgg", "--output-root", str(tmp_path)))
    assert vgg.trainer.model == "vgg" and vgg.trainer.batch_norm_momentum == 0.9
    pairs, gate = config_from_args(run_args("--task", "digits_similarity", "--output-root", str(tmp_path)))
    assert (pairs.trainer.model, pairs.train_steps, pairs.is_similarity) == ("siamese", 1000, True)
    assert gate.startswith("pair gate on 'same': pair accuracy (distance < 0.5 means the same class) >= 0.9")
    short, _ = config_from_args(run_args("--task", "digits_similarity", "--train-steps", "50"))
    assert short.train_steps == 50


def test_a_model_the_task_cannot_train_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="model 'resnet' is not one the tabular pipeline trains"):
        config_from_args(run_args("--model", "resnet", "--output-root", str(tmp_path)))
    with pytest.raises(UsageError, match="unknown model 'lenet'; valid choices"):
        config_from_args(run_args("--task", "digits", "--model", "lenet", "--output-root", str(tmp_path)))


def test_images_command_refuses_to_overwrite_and_reports_bad_directories(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "images.tfrecord.gz").write_bytes(b"")
    argv = ["images", "--image-dir", str(tmp_path / "photos"), "--output", str(tmp_path / "data")]
    assert main(argv) == 2
    assert "images.tfrecord.gz already exists" in capsys.readouterr().err
    argv[-1] = str(tmp_path / "new")
    assert main(argv) == 2
    assert f"{tmp_path / 'photos'} is not a directory; pass a directory with one folder per class" in (
        capsys.readouterr().err
    )
