"""Shared fixtures. The end-to-end pipeline runs are session-scoped and chained, so each costs one run."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

os.environ["TF_USE_LEGACY_KERAS"] = "1"

from pipeline.storage.filesystems import s3_unavailable

REPO_ROOT = Path(__file__).resolve().parent.parent

# TensorFlow's s3:// filesystem: the TFX 1.21 stack has none (next/pyproject.toml), so what needs it runs on
# the 1.16 stack, and tests/test_storage.py checks the refusal on 1.21.
requires_s3 = pytest.mark.skipif(s3_unavailable() is not None, reason=s3_unavailable() or "")

# The components before Transform, which a change of code or a killed later component leaves cached.
DATA_STAGE = (
    "CsvExampleGen",
    "StatisticsGen",
    "ImportSchemaGen",
    "ExampleValidator",
    "DataGate",
    "DriftGate",
)


@pytest.fixture(scope="session", autouse=True)
def _temporary_files(tmp_path_factory):
    """What the libraries leave in the temporary directory outside pipeline runs (TFDV's statistics files,
    autograph's modules) goes to one directory, removed when the session ends; pytest's own stays."""
    from pipeline.local_runner import scratch_temp_dir

    tmp_path_factory.getbasetemp()
    with scratch_temp_dir():
        yield


@dataclasses.dataclass
class RunRecord:
    """One pipeline run: what ML Metadata says it did and the serving versions after it."""

    summary: object
    serving_versions: list[str]
    config: object
    error: str = ""


def serving_versions(config) -> list[str]:
    path = Path(config.serving_dir)
    return sorted(p.name for p in path.iterdir()) if path.exists() else []


def run(config) -> RunRecord:
    from pipeline.local_runner import run_pipeline

    summary = run_pipeline(config)
    return RunRecord(summary, serving_versions(config), config)


@pytest.fixture(scope="session")
def e2e_config(tmp_path_factory):
    from pipeline.tasks import task_config

    return task_config("penguin_species", output_root=str(tmp_path_factory.mktemp("e2e")))


@pytest.fixture(scope="session")
def first_run(e2e_config) -> RunRecord:
    """A fresh output root: everything executes, the model is blessed and pushed."""
    return run(e2e_config)


@pytest.fixture(scope="session")
def second_run(first_run, e2e_config) -> RunRecord:
    """Same data, same code: everything up to the Trainer comes from the cache."""
    return run(e2e_config)


@pytest.fixture(scope="session")
def edited_code_run(second_run, e2e_config) -> RunRecord:
    """As if the trainer code had been edited: a new code fingerprint."""
    edited = dataclasses.replace(e2e_config, code_fingerprint=e2e_config.code_fingerprint + "-edited")
    return run(edited)


@pytest.fixture(scope="session")
def crippled_run(edited_code_run) -> RunRecord:
    """A candidate trained for a single step must not replace the served model."""
    return run(dataclasses.replace(edited_code_run.config, train_steps=1))


@pytest.fixture(scope="session")
def unservable_run(crippled_run) -> RunRecord:
    """A candidate that passes evaluation but whose serving signature requires the label."""
    from components.serving_check import ServingCheckError

    config = dataclasses.replace(
        crippled_run.config,
        train_steps=300,
        run_fn="tests.broken_serving.run_fn",
        max_accuracy_drop=0.1,  # so that the Evaluator blesses it and the serving check decides
    )
    with pytest.raises(ServingCheckError) as raised:
        run(config)
    from pipeline.run_summary import latest_run

    summary = latest_run(config.metadata_path, config.pipeline_name)
    record = RunRecord(summary, serving_versions(config), config)
    record.error = str(raised.value)
    return record


INFERENCE_ROWS = 200
INFERENCE_IMAGES = 30


@pytest.fixture(scope="session")
def body_mass_run(tmp_path_factory) -> RunRecord:
    """The regression task on a fresh output root, scoring 200 generated rows without their body mass at
    the end of each run (batch inference)."""
    import pandas as pd

    from pipeline.data import write_generated_penguins
    from pipeline.tasks import task_config

    inference = tmp_path_factory.mktemp("body_mass_inference")
    path = write_generated_penguins(inference / "new.csv", INFERENCE_ROWS, seed=11)
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.drop(columns=["body_mass_g"]).to_csv(path, index=False)
    config = task_config("penguin_body_mass", output_root=str(tmp_path_factory.mktemp("body_mass")))
    return run(config.replace(inference_data=str(inference)))


@pytest.fixture(scope="session")
def crippled_body_mass_run(body_mass_run) -> RunRecord:
    return run(dataclasses.replace(body_mass_run.config, train_steps=1))


@pytest.fixture(scope="session")
def multi_run(tmp_path_factory) -> RunRecord:
    """The two-headed species + body mass task on a fresh output root."""
    from pipeline.tasks import task_config

    return run(task_config("penguin_multi", output_root=str(tmp_path_factory.mktemp("multi"))))


@pytest.fixture(scope="session")
def crippled_multi_run(multi_run) -> RunRecord:
    return run(dataclasses.replace(multi_run.config, train_steps=1))


@pytest.fixture(scope="session")
def tuned_body_mass_run(crippled_body_mass_run) -> RunRecord:
    """A tiny search (2 trials of 30 steps) before training, on the body mass task's cached data stages."""
    config = dataclasses.replace(
        crippled_body_mass_run.config, train_steps=300, tune=True, tune_trials=2, tune_steps=30
    )
    return run(config)


@pytest.fixture(scope="session")
def custom_loop_run(unservable_run) -> RunRecord:
    """The species task trained by the custom GradientTape loop instead of `fit` (Transform cached)."""
    config = dataclasses.replace(
        unservable_run.config,
        run_fn="trainer_module.run.run_fn",
        trainer=dataclasses.replace(unservable_run.config.trainer, loop="custom"),
        max_accuracy_drop=0.03,
    )
    return run(config)


@pytest.fixture(scope="session")
def overfitting_stopped_run(custom_loop_run) -> RunRecord:
    """The custom-loop run again with DetectOverfitting's threshold at 0.2, which it soon passes."""
    trainer = dataclasses.replace(custom_loop_run.config.trainer, overfitting_threshold=0.2)
    return run(dataclasses.replace(custom_loop_run.config, trainer=trainer))


@pytest.fixture(scope="session")
def after_removed_artifact_run(tuned_body_mass_run) -> RunRecord:
    """The Transform graph of the last run deleted by hand: the cache must not hand it on."""
    import shutil

    removed = tuned_body_mass_run.summary.outputs["Transform"]["transform_graph"]
    shutil.rmtree(removed)
    record = run(tuned_body_mass_run.config)
    record.error = removed
    return record


@pytest.fixture(scope="session")
def after_removed_metadata_run(after_removed_artifact_run) -> RunRecord:
    """The ML Metadata store deleted between runs: a fresh store, a full run, the served versions kept."""
    os.remove(after_removed_artifact_run.config.metadata_path)
    return run(after_removed_artifact_run.config)


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> RunRecord:
    """The digits task (ResNet on PNG examples) on a fresh output root, scoring INFERENCE_IMAGES unlabelled
    images (converted as `images --unlabelled` converts a folder) at the end of each run."""
    from pipeline.images import convert_image_directory, digits_images, encode_png
    from pipeline.tasks import task_config

    images, _ = digits_images()
    folder = tmp_path_factory.mktemp("digits_photos")
    for index in range(INFERENCE_IMAGES):
        (folder / f"digit-{index:02d}.png").write_bytes(encode_png(images[-1 - index]))
    inference = tmp_path_factory.mktemp("digits_inference")
    convert_image_directory(folder, inference, channels=1, unlabelled=True)
    config = task_config("digits", output_root=str(tmp_path_factory.mktemp("digits")))
    return run(config.replace(inference_data=str(inference)))


def digits_model_run(digits_run, model: str) -> RunRecord:
    """The digits task with another model on the ResNet run's cached data stage and Transform; compared with
    the ResNet it may be up to 0.05 less accurate, so that each model's own accuracy is what is tested."""
    trainer = dataclasses.replace(digits_run.config.trainer, model=model)
    return run(dataclasses.replace(digits_run.config, trainer=trainer, max_accuracy_drop=0.05))


@pytest.fixture(scope="session")
def digits_vgg_run(digits_run) -> RunRecord:
    return digits_model_run(digits_run, "vgg")


@pytest.fixture(scope="session")
def digits_quadratic_run(digits_vgg_run) -> RunRecord:
    return digits_model_run(digits_vgg_run, "quadratic_mlp")


@pytest.fixture(scope="session")
def similarity_run(tmp_path_factory) -> RunRecord:
    """The siamese digits_similarity task on a fresh output root."""
    from pipeline.tasks import task_config

    return run(task_config("digits_similarity", output_root=str(tmp_path_factory.mktemp("similarity"))))


def venv_mount(workdir: str) -> str:
    """The shell command (with its trailing `&&`) that mounts this process's virtualenv at the image's
    `workdir`/.venv once the checkout is mounted at `workdir`: empty when that is the checkout's own .venv,
    the newer stack's otherwise (its virtualenv lives outside the checkout: tests/next_stack.py)."""
    import shlex
    import sys

    venv = Path(sys.prefix)
    if venv == REPO_ROOT / ".venv":
        return ""
    return f"mount --bind {shlex.quote(str(venv))} {shlex.quote(workdir)}/.venv && "


def image_workdir() -> str:
    """Where the Dockerfile puts the project: the directory the Kubeflow tests mount the checkout at."""
    import re

    workdirs = re.findall(r"^WORKDIR\s+(\S+)", (REPO_ROOT / "Dockerfile").read_text(), re.MULTILINE)
    return workdirs[-1]


@pytest.fixture(scope="session")
def image_mount_point():
    """The mount point for the checkout (an empty directory, created when missing and removed after)."""
    path = Path(image_workdir())
    created = not path.exists()
    path.mkdir(exist_ok=True)
    yield path
    if created:
        path.rmdir()


@pytest.fixture(scope="session")
def pod_mount_points():
    """The mount points of a KFP task pod's download directories (/gcs, /s3, /minio: the launcher's
    LocalPathForURI), each an empty directory created when missing and removed after."""
    from tests.kfp_launcher import LOCAL_DIRS

    created = [Path(p) for p in LOCAL_DIRS.values() if not Path(p).exists()]
    for path in created:
        path.mkdir()
    yield
    for path in created:
        path.rmdir()
