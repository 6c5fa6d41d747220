"""The model registry: the versions in the serving directory, what each was trained on and scored, and
rollback.

TF Serving serves the highest numbered version directory. A rollback renames the newer versions to
`.rolled-back-<version>` (a name TF Serving ignores), lowest first, so the served model changes once, with
the last rename, and atomically; rolling forward renames them back.

On object storage (no rename) the served version is the one `models.config` names (components/pusher.py): a
rollback rewrites that one object, naming a complete earlier version; rolling forward names the newer one.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from components.pusher import (
    is_complete,
    on_object_store,
    publish,
    served_versions,
    serving_version,
)
from pipeline.run_summary import run_summaries
from pipeline.storage.metadata import MetadataLocation, as_location

ROLLED_BACK_PREFIX = ".rolled-back-"


class RegistryError(ValueError):
    """A rollback that cannot be done (unknown version, nothing to roll back to)."""


@dataclass
class ModelVersion:
    version: int
    state: str  # "serving", "available" (an older live version) or "rolled back"
    pushed_at: str  # the version number is the push time, in seconds since the epoch
    run_id: str | None = None
    span: int | None = None
    code_fingerprint: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def rolled_back_versions(serving_dir: str) -> list[int]:
    if on_object_store(serving_dir) or not os.path.isdir(serving_dir):
        return []
    names = os.listdir(serving_dir)
    return sorted(int(n[len(ROLLED_BACK_PREFIX) :]) for n in names if n.startswith(ROLLED_BACK_PREFIX))


def list_versions(
    serving_dir: str, metadata: MetadataLocation | str, pipeline_name: str
) -> list[ModelVersion]:
    """Every pushed version, newest first, with what ML Metadata knows of the run that pushed it."""
    from pipeline import results

    live = served_versions(serving_dir)
    serving = serving_version(serving_dir)
    pushes = {}
    if as_location(metadata).exists():
        for summary in run_summaries(metadata, pipeline_name):
            if summary.pushed_destination:
                pushes[int(os.path.basename(summary.pushed_destination.rstrip("/")))] = summary
    versions = []
    for version in sorted(set(live) | set(rolled_back_versions(serving_dir)), reverse=True):
        if version not in live:
            state = "rolled back"
        elif version == serving:
            state = "serving"
        elif on_object_store(serving_dir) and not is_complete(f"{serving_dir.rstrip('/')}/{version}"):
            state = "incomplete"  # a push that was stopped before its last file: never served
        else:
            state = "available"
        entry = ModelVersion(version, state, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(version)))
        summary = pushes.get(version)
        if summary is not None:
            entry.run_id, entry.span = summary.run_id, summary.span
            entry.code_fingerprint = (summary.trainer_config or {}).get("code_fingerprint")
            evaluation_uri = summary.outputs.get("Evaluator", {}).get("evaluation")
            if evaluation_uri:
                entry.metrics = results.evaluation(evaluation_uri).candidate
        versions.append(entry)
    return versions


def rollback(serving_dir: str, version: int | None = None, model_name: str = "model") -> tuple[int, int]:
    """Makes `version` (default: the live version before the served one) the served version.

    Returns (previously served, now served).
    """
    if on_object_store(serving_dir):
        return _rollback_on_object_store(serving_dir, version, model_name)
    live = served_versions(serving_dir)
    if not live:
        raise RegistryError(f"no model is served from {serving_dir}; nothing to roll back")
    current = live[-1]
    if version is None:
        if len(live) < 2:
            raise RegistryError(f"version {current} is the only one served; there is no earlier version")
        version = live[-2]
    rolled_back = rolled_back_versions(serving_dir)
    if version not in live and version not in rolled_back:
        known = ", ".join(str(v) for v in sorted(set(live) | set(rolled_back)))
        raise RegistryError(f"no version {version} in {serving_dir}; known versions: {known}")
    if version in rolled_back:
        # Restoring a version below the served one changes nothing served yet.
        os.rename(
            os.path.join(serving_dir, f"{ROLLED_BACK_PREFIX}{version}"),
            os.path.join(serving_dir, str(version)),
        )
    for newer in sorted(v for v in live if v > version):
        os.rename(
            os.path.join(serving_dir, str(newer)), os.path.join(serving_dir, f"{ROLLED_BACK_PREFIX}{newer}")
        )
    return current, version


def _rollback_on_object_store(serving_dir: str, version: int | None, model_name: str) -> tuple[int, int]:
    current = serving_version(serving_dir)
    if current is None:
        raise RegistryError(f"no model is served from {serving_dir}; nothing to roll back")
    base = serving_dir.rstrip("/")
    complete = [v for v in served_versions(serving_dir) if is_complete(f"{base}/{v}")]
    if version is None:
        earlier = [v for v in complete if v < current]
        if not earlier:
            raise RegistryError(f"version {current} is the only one served; there is no earlier version")
        version = earlier[-1]
    if version not in complete:
        known = ", ".join(str(v) for v in complete)
        raise RegistryError(f"no complete version {version} in {serving_dir}; known versions: {known}")
    publish(serving_dir, version, model_name)
    return current, version
