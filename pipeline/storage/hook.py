"""Imported by the `.pth` file at every interpreter's start (see filesystems.py): once TensorFlow itself
has been imported, TensorFlow's s3:// filesystem is registered. Cheap when TensorFlow is never imported."""

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
        from pipeline.storage.filesystems import register_s3

        register_s3()


if "tensorflow" not in sys.modules and not any(isinstance(f, _AfterTensorFlow) for f in sys.meta_path):
    sys.meta_path.insert(0, _AfterTensorFlow())
