"""`python -m pipeline predict`: rows scored through Beam by a pushed model's `serving_default`, compared with
the same SavedModel queried directly (tests/direct_scores.py: tf.Examples built in Python, one request, a
process that imports nothing of the project), for the classifier, the regressor and the two-headed model of
the session's pipeline runs; the same bytes under Beam's multi_processing mode; every bad input one line,
exit status 1, and no file left behind."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.test_cli_e2e import REPO_ROOT, cli

pytestmark = pytest.mark.e2e

SCORED = re.compile(r"^Scored (\d+) rows of (\d+) file\(s\) with version (\d+) of '(\S+)': (\S+)$", re.M)
WORKER_OPTIONS = re.compile(
    r"Worker: .*Pipeline_options: \{\\'direct_num_workers\\': 2, \\'direct_running_mode"
)


def unlabelled(run, directory: Path) -> Path:
    """The run's data without its label columns: what arrives to be scored."""
    config = run.config
    labels = [config.label_key, *([config.second_label_key] if config.second_label_key else [])]
    table = pd.read_csv(next(Path(config.data_dir).glob("*.csv")), keep_default_na=False, dtype=str)
    directory.mkdir(parents=True)
    table.drop(columns=labels).to_csv(directory / "rows.csv", index=False)
    return directory


def predict(run, data: Path, output: Path, *extra: str) -> subprocess.CompletedProcess:
    return cli(
        "predict", "--data-root", str(data), "--output", str(output), "--pipeline-name",
        run.config.pipeline_name, "--output-root", run.config.output_root, *extra,
    )  # fmt: skip


def direct(model_dir: Path, rows: Path) -> dict:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tests" / "direct_scores.py"), str(model_dir), str(rows)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def scored_version(result: subprocess.CompletedProcess, rows: int) -> int:
    assert result.returncode == 0, result.stderr[-3000:]
    match = SCORED.search(result.stdout)
    assert match and int(match.group(1)) == rows, result.stdout
    return int(match.group(3))


def read_predictions(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def assert_close(ours: list[str], theirs: list[float]) -> None:
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert float(a) == pytest.approx(b, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("run_name", ["first_run", "body_mass_run", "multi_run"])
def test_predictions_equal_the_served_models_own(run_name, request, tmp_path):
    run = request.getfixturevalue(run_name)
    data = unlabelled(run, tmp_path / "new")
    rows = pd.read_csv(data / "rows.csv", dtype=str, keep_default_na=False)
    output = tmp_path / "predictions.csv"
    version = scored_version(predict(run, data, output), len(rows))
    model_dir = Path(run.config.serving_dir) / str(version)
    theirs = direct(model_dir, data / "rows.csv")
    predictions = read_predictions(output)
    spec = json.loads((model_dir / "assets.extra" / "prediction_spec.json").read_text())

    # The input columns first, as written, rows in input order.
    header = list(predictions[0])
    assert header[: len(rows.columns)] == list(rows.columns)
    assert [[p[c] for c in rows.columns] for p in predictions] == rows.values.tolist()
    prefixed = len(spec["labels"]) > 1
    for label, task in spec["labels"]:
        prefix = f"{label}_" if prefixed else ""
        if task == "regression":
            assert_close(
                [p[f"predicted_{label}"] for p in predictions], [v[0] for v in theirs[f"{prefix}predictions"]]
            )
            continue
        assert [p[f"predicted_{label}"] for p in predictions] == theirs[f"{prefix}classes"]
        for index, name in enumerate(spec["classes"][label]):
            assert_close(
                [p[f"{label}_probability_{name}"] for p in predictions],
                [v[index] for v in theirs[f"{prefix}probabilities"]],
            )


@pytest.fixture(scope="module")
def species(first_run, tmp_path_factory):
    """The classifier's rows scored in-process (in_memory) and by two Beam worker processes."""
    root = tmp_path_factory.mktemp("predict-species")
    data = unlabelled(first_run, root / "new")
    results = {}
    for mode, extra in (
        ("in_memory", ()),
        (
            "multi_processing",
            ("--beam-arg=--direct_running_mode=multi_processing", "--beam-arg=--direct_num_workers=2"),
        ),
    ):
        results[mode] = (predict(first_run, data, root / f"{mode}.csv", *extra), root / f"{mode}.csv")
    return first_run, data, root, results


def test_beam_worker_processes_give_the_same_file(species):
    run, _, _, results = species
    (in_memory, first), (multi, second) = results["in_memory"], results["multi_processing"]
    assert scored_version(in_memory, 344) == scored_version(multi, 344)
    assert first.read_bytes() == second.read_bytes()
    log = sorted((Path(run.config.output_root) / "logs").glob("predict-*.log"))[-1].read_text(
        errors="replace"
    )
    assert len(WORKER_OPTIONS.findall(log)) == 2  # both worker processes started with the options given


def test_any_pushed_version_scores_on_request(species, tmp_path):
    run, data, _, results = species
    versions = sorted(int(p.name) for p in Path(run.config.serving_dir).iterdir() if p.name.isdigit())
    oldest = versions[0]
    result = predict(run, data, tmp_path / "old.csv", "--version", str(oldest))
    assert scored_version(result, 344) == oldest
    theirs = direct(Path(run.config.serving_dir) / str(oldest), data / "rows.csv")
    assert [p["predicted_species"] for p in read_predictions(tmp_path / "old.csv")] == theirs["classes"]


def bad_rows(directory: Path, text: str) -> Path:
    directory.mkdir()
    (directory / "rows.csv").write_text(text)
    return directory


HEADER = "island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year\n"
ROW = "Biscoe,45.1,14.5,215.0,5000.0,female,2008\n"


@pytest.mark.parametrize(
    "name, text, message",
    [
        (
            "unknown",
            HEADER.replace("\n", ",colour\n") + ROW.replace("\n", ",red\n"),
            r"rows\.csv: column\(s\) colour are not in the model's schema; remove them from the file, or "
            r"rename them to the model's columns$",
        ),
        (
            "missing",
            HEADER.replace("island,", "") + ROW.replace("Biscoe,", ""),
            r"rows\.csv: the header lacks the required column\(s\) island \(its columns: bill_length_mm, "
            r".*\); add them, or fix the header$",
        ),
        (
            "text",
            HEADER + ROW + ROW.replace("45.1", "long"),
            r"rows\.csv line 3: column bill_length_mm holds 'long', not a number; fix the value, or remove "
            r"the row$",
        ),
        ("empty", None, r"no data files in .*empty; put one or more CSV files with a header row there$"),
    ],
)
def test_bad_input_is_one_line_and_leaves_no_file(name, text, message, first_run, tmp_path):
    data = bad_rows(tmp_path / name, text) if text is not None else tmp_path / name
    data.mkdir(exist_ok=True)
    output = tmp_path / "out" / "predictions.csv"
    output.parent.mkdir()
    result = predict(first_run, data, output)
    assert result.returncode == 1
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert re.search(message, line), line
    assert list(output.parent.iterdir()) == []


def test_a_version_never_pushed_is_one_line(first_run, tmp_path):
    data = bad_rows(tmp_path / "rows", HEADER + ROW)
    result = predict(first_run, data, tmp_path / "p.csv", "--version", "123")
    assert result.returncode == 1
    assert re.search(
        r"^error: version 123 was never pushed to \S+serving_model \(pushed: \d+.*\); see `python -m "
        r"pipeline models`$",
        result.stderr,
        re.M,
    )
    assert not (tmp_path / "p.csv").exists()


def test_unlabelled_images_are_converted_and_scored_as_the_model_scores_them(digits_run, tmp_path):
    from pipeline.images import digits_images, encode_png

    images, _ = digits_images()
    folder = tmp_path / "photos" / "batch-1"
    folder.mkdir(parents=True)
    for index in range(40):
        (folder / f"digit-{index:02d}.png").write_bytes(encode_png(images[index]))
    converted = cli(
        "images", "--unlabelled", "--image-dir", str(tmp_path / "photos"), "--output", str(tmp_path / "data"),
        "--channels", "1",
    )  # fmt: skip
    assert converted.returncode == 0, converted.stderr[-2000:]
    assert "unlabelled, for `predict`" in converted.stdout
    output = tmp_path / "predictions.csv"
    version = scored_version(predict(digits_run, tmp_path / "data", output), 40)
    predictions = read_predictions(output)
    assert list(predictions[0])[:3] == ["source_file", "record", "file"]
    assert [p["file"] for p in predictions] == [f"batch-1/digit-{i:02d}.png" for i in range(40)]
    model_dir = Path(digits_run.config.serving_dir) / str(version)
    theirs = direct(model_dir, tmp_path / "data" / "images.tfrecord.gz")
    assert [p["predicted_label"] for p in predictions] == theirs["classes"]
    spec = json.loads((model_dir / "assets.extra" / "prediction_spec.json").read_text())
    assert sorted(spec["classes"]["label"], key=int) == [str(d) for d in range(10)]
    for index, name in enumerate(spec["classes"]["label"]):  # the probabilities' order: the vocabulary's
        assert_close(
            [p[f"label_probability_{name}"] for p in predictions], [v[index] for v in theirs["probabilities"]]
        )


def test_pairs_are_scored_with_their_distance(similarity_run, tmp_path):
    import shutil

    pairs = next((Path(similarity_run.config.data_dir) / "eval").glob("*.tfrecord.gz"))
    (tmp_path / "pairs").mkdir()
    shutil.copy(pairs, tmp_path / "pairs" / pairs.name)
    output = tmp_path / "predictions.csv"
    result = predict(similarity_run, tmp_path / "pairs", output)
    assert result.returncode == 0, result.stderr[-3000:]
    version = int(SCORED.search(result.stdout).group(3))
    predictions = read_predictions(output)
    theirs = direct(Path(similarity_run.config.serving_dir) / str(version), tmp_path / "pairs" / pairs.name)
    assert len(predictions) == len(theirs["distance"]) > 0
    assert_close([p["distance"] for p in predictions], [v[0] for v in theirs["distance"]])
    assert [int(p["same"]) for p in predictions] == [v[0] for v in theirs["same"]]


def test_a_damaged_image_is_one_line(digits_run, tmp_path):
    from pipeline.images import image_example, write_records

    write_records(tmp_path / "data" / "images.tfrecord.gz", [image_example(b"\x89PNG not really", None)])
    output = tmp_path / "predictions.csv"
    result = predict(digits_run, tmp_path / "data", output)
    assert result.returncode == 1
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "images.tfrecord.gz, record 0" in line
    assert not output.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["data"]
