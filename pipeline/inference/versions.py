"""Which pushed version scores: the served one, or any pushed version (rolled back ones too)."""

from __future__ import annotations

import json
import posixpath

from components.pusher import on_object_store, served_versions, serving_version
from pipeline.registry import ROLLED_BACK_PREFIX, rolled_back_versions
from trainer_module.serving import PREDICTION_SPEC


class VersionError(ValueError):
    """No model to score with: one line naming the serving directory and the fix."""


def model_version(serving_dir: str, version: int | None = None) -> tuple[int, str]:
    """(version, its directory): `version`, else the one served."""
    live = served_versions(serving_dir)
    if version is None:
        served = serving_version(serving_dir)
        if served is None:
            raise VersionError(
                f"no model is served from {serving_dir} yet; run the pipeline first (or pass --version)"
            )
        return served, posixpath.join(serving_dir, str(served))
    if version in live:
        return version, posixpath.join(serving_dir, str(version))
    if not on_object_store(serving_dir) and version in rolled_back_versions(serving_dir):
        return version, posixpath.join(serving_dir, f"{ROLLED_BACK_PREFIX}{version}")
    pushed = sorted(set(live) | set(rolled_back_versions(serving_dir)))
    raise VersionError(
        f"version {version} was never pushed to {serving_dir} (pushed: "
        f"{', '.join(map(str, pushed)) or 'none'}); see `python -m pipeline models`"
    )


def load_spec(model_dir: str) -> dict:
    """The version's prediction spec (trainer_module.serving.prediction_spec), written beside the model."""
    from tfx.dsl.io import fileio

    path = posixpath.join(model_dir, PREDICTION_SPEC)
    if not fileio.exists(path):
        raise VersionError(
            f"{model_dir} has no {PREDICTION_SPEC} (pushed by an earlier release of the project); push a "
            "model again with `python -m pipeline run`"
        )
    with fileio.open(path, "r") as f:
        return json.loads(f.read())
