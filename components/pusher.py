"""A Pusher executor for filesystem destinations that publishes whole versions only, and only new ones.

TFX's Pusher copies files straight into `<base>/<timestamp>`: a process killed mid-copy leaves a half
written version that a model server watching `<base>` would try to load. It also pushes again whenever it
re-executes, so re-running a pipeline whose model is cached would serve the same model under a new version.

This executor copies into a hidden temporary directory and renames it into place (a rename within one
filesystem is atomic), and skips the push when the latest served version holds the same files. A staging
directory left by a killed push is removed by the next push (one pipeline writes a serving directory: the
run lock keeps its runs apart).

Object storage (gs://, s3://) has no rename, and a version prefix appears with its first object: a server
watching the numbered prefixes could load a half-written version. There the serving directory also holds
`models.config`, TF Serving's model configuration (`--model_config_file`), which names the one version to
serve (`model_version_policy { specific { ... } }`). A push copies the version, `saved_model.pb` last, then
rewrites that file, one object written whole: the server switches to a version only once it is complete.
"""

import hashlib
import os
import re
import time

from absl import logging
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, json_utils, proto_utils

ALREADY_SERVED_KEY = "already_served"
INCOMPLETE_PREFIX = ".incomplete-"
# On object storage: TF Serving's model configuration, naming the version to serve.
SERVING_CONFIG = "models.config"
MODEL_NAME_KEY = "model_name"
SAVED_MODEL = "saved_model.pb"


def on_object_store(path: str) -> bool:
    return "://" in path


def serving_config(model_name: str, base_directory: str, version: int) -> str:
    """TF Serving's ModelServerConfig (text format) serving `version` of the model under `base_directory`."""
    return (
        "model_config_list {\n  config {\n"
        f'    name: "{model_name}"\n    base_path: "{base_directory.rstrip("/")}"\n'
        '    model_platform: "tensorflow"\n'
        f"    model_version_policy {{ specific {{ versions: {version} }} }}\n"
        "  }\n}\n"
    )


def configured_version(base_directory: str) -> int | None:
    """The version `models.config` names, or None without one."""
    path = f"{base_directory.rstrip('/')}/{SERVING_CONFIG}"
    if not fileio.exists(path):
        return None
    with fileio.open(path, "r") as f:
        found = re.search(r"versions:\s*(\d+)", f.read())
    return int(found.group(1)) if found else None


def serving_version(base_directory: str) -> int | None:
    """The version a model server serves from `base_directory`: on object storage the one `models.config`
    names, else the highest numbered one."""
    if on_object_store(base_directory):
        return configured_version(base_directory)
    versions = served_versions(base_directory)
    return versions[-1] if versions else None


def is_complete(version_directory: str) -> bool:
    """A pushed version is complete once its `saved_model.pb`, copied last, is there."""
    return fileio.exists(f"{version_directory.rstrip('/')}/{SAVED_MODEL}")


def publish(base_directory: str, version: int, model_name: str) -> None:
    """Object storage: makes `version` the served one by rewriting `models.config` (one object, whole)."""
    with fileio.open(f"{base_directory.rstrip('/')}/{SERVING_CONFIG}", "w") as f:
        f.write(serving_config(model_name, base_directory, version))


def copy_saved_model_last(source: str, destination: str) -> None:
    """Copies a model directory file by file with `saved_model.pb` last (see is_complete)."""
    files = []
    for root, _, names in fileio.walk(source):
        files.extend(os.path.join(root, name) for name in names)
    files.sort(key=lambda path: (os.path.basename(path) == SAVED_MODEL, path))
    for path in files:
        target = os.path.join(destination, os.path.relpath(path, source))
        fileio.makedirs(os.path.dirname(target))
        fileio.copy(path, target, overwrite=True)


def model_fingerprint(model_dir: str) -> str:
    """SHA-256 over the relative paths and bytes of every file of a SavedModel directory."""
    digest = hashlib.sha256()
    files = []
    for root, _, names in fileio.walk(model_dir):
        files.extend(os.path.join(root, name) for name in names)
    for path in sorted(files):
        digest.update(os.path.relpath(path, model_dir).encode() + b"\0")
        with fileio.open(path, "rb") as f:
            digest.update(f.read())
    return digest.hexdigest()


def served_versions(base_directory: str) -> list[int]:
    """Numeric version directories under `base_directory`, oldest first (what TF Serving loads)."""
    if not fileio.exists(base_directory):
        return []
    return sorted(
        int(name.rstrip("/")) for name in fileio.listdir(base_directory) if name.rstrip("/").isdigit()
    )


def remove_incomplete(base_directory: str) -> list[str]:
    """Removes the staging directories that killed pushes left in `base_directory`; returns them."""
    if not fileio.exists(base_directory):
        return []
    stale = [
        os.path.join(base_directory, name.rstrip("/"))
        for name in fileio.listdir(base_directory)
        if name.startswith(INCOMPLETE_PREFIX)
    ]
    for path in stale:
        logging.warning("Removing %s, left by an interrupted push.", path)
        fileio.rmtree(path)
    return stale


class Executor(pusher_executor.Executor):
    """Pushes a blessed model to a filesystem destination atomically; other destinations as TFX does."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        if destination.WhichOneof("destination") != "filesystem":
            return super().Do(input_dict, output_dict, exec_properties)

        self._log_startup(input_dict, output_dict, exec_properties)
        base = destination.filesystem.base_directory
        remove_incomplete(base)
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY]
        )
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model_path = self.GetModelPath(input_dict)

        versions = served_versions(base)
        served = serving_version(base)
        if served is not None:
            latest = os.path.join(base, str(served))
            if model_fingerprint(latest) == model_fingerprint(model_path):
                logging.info("This model is already served as %s; not pushing it again.", latest)
                self._MarkNotPushed(model_push)
                model_push.set_string_custom_property(ALREADY_SERVED_KEY, latest)
                return

        # Versions must increase: a second push within the same second takes the next number.
        version = str(max([int(time.time())] + [v + 1 for v in versions]))
        serving_path = os.path.join(base, version)
        if on_object_store(base):
            # No rename: the version is copied in place, then named in models.config (module docstring).
            copy_saved_model_last(model_path, serving_path)
            custom = json_utils.loads(
                exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or "null"
            )
            publish(base, int(version), (custom or {}).get(MODEL_NAME_KEY, "model"))
        else:
            staging_path = os.path.join(base, INCOMPLETE_PREFIX + version)
            fileio.makedirs(base)
            io_utils.copy_dir(model_path, staging_path)
            fileio.rename(staging_path, serving_path)
        logging.info("Model written to serving path %s.", serving_path)

        io_utils.copy_dir(model_path, model_push.uri)  # the pipeline's own archive of what was pushed
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)
