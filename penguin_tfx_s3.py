"""Imported by a `.pth` file at every interpreter's start (pipeline/storage/filesystems.py): once TensorFlow
itself has been imported, tensorflow-io is imported too, which registers TensorFlow's s3:// filesystem.

A top-level module of its own, importing nothing of the project: the `.pth` runs before the working
directory is on sys.path, and importing the `pipeline` package then would fix it to the installed copy.
Cheap when TensorFlow is never imported."""

import importlib.abc
import importlib.util
import sys


class _AfterTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _RegisteringLoader(spec.loader)
        return spec


class _RegisteringLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        if importlib.util.find_spec("tensorflow_io") is not None:
            import tensorflow_io  # noqa: F401 - registers its filesystems (s3://) into TensorFlow


if "tensorflow" not in sys.modules and not any(isinstance(f, _AfterTensorFlow) for f in sys.meta_path):
    sys.meta_path.insert(0, _AfterTensorFlow())
