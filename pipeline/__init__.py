"""The penguin TFX pipeline: configuration, pipeline definition and runners."""

import os

# TFX 1.16 needs Keras 2 (tf-keras). TF 2.16 picks Keras 3 unless this is set before TensorFlow's
# first import; child processes (Beam workers, subprocess tests) inherit it from here.
os.environ["TF_USE_LEGACY_KERAS"] = "1"


def version() -> str:
    """The project's version, from its installed package's metadata (pyproject.toml's, once installed)."""
    from importlib.metadata import version as installed

    return installed("penguin-tfx")
