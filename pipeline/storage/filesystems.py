"""TensorFlow's s3:// filesystem in every Python process, and a true exit status after using it.

TensorFlow 2.16 has gs:// built in; s3:// comes from tensorflow-io's filesystem plugin, registered into
TensorFlow when `tensorflow_io` is imported. TFX's executors never import this project (nor tensorflow_io),
and Beam's worker processes import only TFX, so the plugin is registered by an import hook that every
interpreter of the environment installs at start-up (a `.pth` file, written by `make setup` and the image
build: `python -m pipeline.storage.filesystems`): when TensorFlow is imported, the plugin is registered.

tensorflow-io 0.37.1, the last release for TensorFlow 2.16, aborts the interpreter at exit after any S3
access ("pure virtual method called", status 134; tensorflow/io#2039): a process that succeeded would be
reported failed. `finish(status)` flushes the process's output and leaves with `os._exit`, before the
interpreter's teardown where the abort happens; the project's entry points (the command line, the Kubeflow
container command) end through it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import site
import sys
from pathlib import Path

HOOK_FILE = "penguin_tfx_filesystems.pth"
HOOK_LINE = "import penguin_tfx_s3\n"  # the top-level hook module (penguin_tfx_s3.py)


def register_s3() -> bool:
    """Registers tensorflow-io's filesystems (s3:// among them) into TensorFlow, once, by importing
    tensorflow_io (20 ms; it registers them itself, and a second registration would fail); False when
    tensorflow-io is not installed."""
    if not registered():
        if importlib.util.find_spec("tensorflow_io") is None:
            return False
        import tensorflow_io  # noqa: F401 - registers the filesystem plugin into TensorFlow
    return True


def s3_unavailable() -> str | None:
    """Why this environment has no TensorFlow S3 filesystem, or None when it has one. tensorflow-io's last
    release (0.37.1) is built for TensorFlow 2.16; on TensorFlow 2.21 (the TFX 1.21 stack, next/) its
    plugins fail to load (undefined symbols), so that stack does not install it."""
    if importlib.util.find_spec("tensorflow_io") is not None:
        return None
    from importlib import metadata

    return (
        f"TensorFlow {metadata.version('tensorflow')} has no s3:// filesystem here (tensorflow-io, which "
        "provides it, has no release for it): use a local path or gs://, or the TFX 1.16 stack for s3://"
    )


def registered() -> bool:
    """Whether tensorflow-io, and with it TensorFlow's S3 filesystem, is loaded in this process."""
    return "tensorflow_io" in sys.modules


def use_s3(settings) -> None:
    """Points this process's TensorFlow at the S3 store of `settings` (a locations.S3Settings): its
    variables are read when TensorFlow first touches s3://."""
    os.environ.update(settings.environment())


def finish(status: int) -> None:
    """Exits with `status`: through `os._exit` once the S3 filesystem was registered (see the module
    docstring), after flushing what the process wrote; else as usual."""
    if not registered():
        sys.exit(status)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)


def install_hook(site_packages: str | None = None) -> Path:
    """Writes the `.pth` file that makes every interpreter of this environment register the plugin."""
    target = Path(site_packages or site.getsitepackages()[0], HOOK_FILE)
    target.write_text(HOOK_LINE)
    return target


if __name__ == "__main__":
    print(f"Installed {install_hook()}")
