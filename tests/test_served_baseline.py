"""The Kubeflow baseline: the newest served version copied into a Model artifact, or none."""

from __future__ import annotations

from tfx.types import standard_artifacts

from components.evaluator import holds_model
from components.served_baseline import ServedBaseline


def resolve(tmp_path, serving_dir) -> standard_artifacts.Model:
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "baseline")
    ServedBaseline.EXECUTOR_SPEC.executor_class().Do(
        {}, {"model": [model]}, {"serving_dir": str(serving_dir)}
    )
    return model


def test_the_newest_served_version_becomes_the_baseline(tmp_path):
    serving = tmp_path / "serving_model"
    for version, content in ((7, b"old"), (12, b"new"), (9, b"middle")):
        (serving / str(version) / "variables").mkdir(parents=True)
        (serving / str(version) / "saved_model.pb").write_bytes(content)
    (serving / ".incomplete-13").mkdir()  # a push in progress is not a version

    model = resolve(tmp_path, serving)
    assert holds_model(model)
    assert (tmp_path / "baseline" / "Format-Serving" / "saved_model.pb").read_bytes() == b"new"
    assert model.get_string_custom_property("served_version") == "12"


def test_nothing_served_gives_an_empty_baseline_the_evaluator_ignores(tmp_path):
    model = resolve(tmp_path, tmp_path / "serving_model")
    assert not holds_model(model)
    assert model.get_string_custom_property("served_version") == ""
