"""End to end on images: the digits task with each image model, the siamese digits_similarity task, a
user's image directory through `images` then `run`, and bad image data stopped before any component."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow_model_analysis as tfma

from pipeline import images
from tests.test_cli_e2e import cli

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parent.parent


def eval_examples(config) -> str:
    return os.path.join(config.pipeline_root, "ImportExampleGen", "examples", "*", "Split-eval", "*")


def client(script: str, *argv: str, cwd) -> dict:
    """Runs a serving client of tests/ in a fresh process, outside the repository."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tests" / script), *argv],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def per_class(evaluation_uri: str, metric: str) -> dict[str, float]:
    """The candidate's `metric` on each `label` slice, by the slice's value."""
    found = {}
    for metrics in tfma.load_metrics(evaluation_uri):
        keys = metrics.slice_key.single_slice_keys
        if len(keys) != 1 or keys[0].column != "label":
            continue
        for entry in metrics.metric_keys_and_values:
            if entry.key.name == metric and entry.key.model_name != "baseline" and not entry.key.is_diff:
                found[str(keys[0].int64_value)] = entry.value.double_value.value
    return found


def accuracy(record, metric="sparse_categorical_accuracy") -> float:
    from pipeline import results

    return results.evaluation(record.summary.outputs["Evaluator"]["evaluation"]).candidate[metric]


def test_digits_resnet_is_blessed_above_095_and_pushed(digits_run):
    summary = digits_run.summary
    assert summary.node_states["ImportExampleGen"] == "COMPLETE"
    assert summary.blessed is True and summary.pushed_destination
    assert accuracy(digits_run) >= 0.95
    assert summary.trainer_config["trainer"]["model"] == "resnet"


def test_digits_are_evaluated_per_class(digits_run):
    by_class = per_class(digits_run.summary.outputs["Evaluator"]["evaluation"], "sparse_categorical_accuracy")
    assert sorted(by_class) == [str(d) for d in range(10)]
    assert min(by_class.values()) >= 0.8
    counts = per_class(digits_run.summary.outputs["Evaluator"]["evaluation"], "example_count")
    assert 550 < sum(counts.values()) < 650  # a third of 1,797, split by hash


def test_served_digits_model_answers_png_examples_with_the_right_class(digits_run):
    result = client(
        "serving_client.py",
        digits_run.summary.pushed_destination,
        eval_examples(digits_run.config),
        "label",
        cwd=digits_run.config.output_root,
    )
    assert result["project_imported"] == []
    assert result["count"] > 550 and result["accuracy"] >= 0.95
    assert result["classes_seen"] == [str(d) for d in range(10)]
    np.testing.assert_allclose(result["probability_sums"], 1.0, rtol=1e-4)


@pytest.mark.parametrize("fixture, least", [("digits_vgg_run", 0.93), ("digits_quadratic_run", 0.9)])
def test_vgg_and_quadratic_mlp_train_on_the_cached_images(fixture, least, request):
    record = request.getfixturevalue(fixture)
    model = record.config.trainer.model
    assert record.summary.trainer_config["trainer"]["model"] == model
    assert record.summary.node_states["Transform"] == "CACHED"
    assert record.summary.node_states["Trainer"] == "COMPLETE"
    assert accuracy(record) >= least, model


def test_similarity_model_is_blessed_on_held_out_pairs(similarity_run):
    summary = similarity_run.summary
    assert summary.blessed is True and summary.pushed_destination
    assert accuracy(similarity_run, "pair_accuracy") >= 0.90
    by_class = per_class(summary.outputs["Evaluator"]["evaluation"], "pair_accuracy")
    assert sorted(by_class) == [str(d) for d in range(10)]


def test_served_similarity_model_gives_distances_and_embeddings(similarity_run):
    result = client(
        "similarity_client.py",
        similarity_run.summary.pushed_destination,
        eval_examples(similarity_run.config),
        cwd=similarity_run.config.output_root,
    )
    assert result["project_imported"] == [] and result["count"] == 599
    assert result["outputs"] == ["distance", "same"] and result["same_output_agrees"]
    assert result["same_class_mean_distance"] < 0.5 < result["different_class_mean_distance"]
    assert result["pair_accuracy"] >= 0.90
    assert result["embedding_shape"] == [599, similarity_run.config.trainer.units]


def write_digit_folders(root: Path, count: int = 600) -> Path:
    """The first `count` digits as PNG files, one folder per digit name: a user's image directory."""
    names = "zero one two three four five six seven eight nine".split()
    pixels, labels = images.digits_images()
    for i in range(count):
        folder = root / names[labels[i]]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:04d}.png").write_bytes(images.encode_png(pixels[i]))
    return root


@pytest.fixture(scope="module")
def user_images(tmp_path_factory) -> tuple[Path, Path]:
    """`python -m pipeline images` on a directory of digit PNGs: (its data root, its schema)."""
    tmp = tmp_path_factory.mktemp("user_images")
    source = write_digit_folders(tmp / "photos")
    data, schema = tmp / "data", tmp / "schema.pbtxt"
    converted = cli("images", "--image-dir", str(source), "--output", str(data), "--channels", "1",
                    "--schema-output", str(schema))  # fmt: skip
    assert converted.returncode == 0, converted.stderr[-3000:]
    assert "8x8 PNGs with 1 channel(s), 10 classes: eight, five, four" in converted.stdout
    assert f"Then: python -m pipeline run --data-root {data} --schema {schema}" in converted.stdout
    return data, schema


def test_a_users_image_directory_goes_through_the_pipeline(user_images, tmp_path):
    data, schema = user_images
    output_root = tmp_path / "out"
    result = cli("run", "--data-root", str(data), "--schema", str(schema), "--output-root", str(output_root))
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    assert "classification gate on 'label' (10 classes)" in result.stdout
    assert "Blessed and pushed:" in result.stdout
    served = sorted((output_root / "serving_model").iterdir())[-1]
    examples = output_root / "pipeline" / "ImportExampleGen" / "examples" / "*" / "Split-eval" / "*"
    answer = client("serving_client.py", str(served), str(examples), "label", cwd=output_root)
    assert answer["accuracy"] >= 0.9
    assert "seven" in answer["classes_seen"]


BAD_IMAGES = [
    ("not_png", b"\xff\xd8\xff\xe0 a JPEG header", "feature 'image' is not a PNG image"),
    ("wrong_size", (16, 16, 1), "is a 16x16 image with 1 channel(s), expected 8x8 with 1"),
]


@pytest.mark.parametrize("name, bad, expected", BAD_IMAGES)
def test_a_bad_image_stops_the_run_naming_the_example(user_images, tmp_path, name, bad, expected):
    _, schema = user_images
    pixels, _ = images.digits_images()
    if isinstance(bad, tuple):
        bad = images.encode_png(np.zeros(bad, np.uint8))
    good = [images.image_example(images.encode_png(pixels[i]), "one") for i in range(4)]
    path = images.write_records(
        tmp_path / name / "part-1.tfrecord.gz", good[:2] + [images.image_example(bad, "one")] + good[2:]
    )
    out = tmp_path / "out"
    result = cli("run", "--data-root", str(path.parent), "--schema", str(schema), "--output-root", str(out))
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}, record 2: ")
    assert expected in lines[0]
    assert not (out / "pipeline").exists() and not (out / "serving_model").exists()
