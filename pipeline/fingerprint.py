"""A fingerprint of the trainer code, part of the Transform and Trainer cache keys.

TFX's cache key holds a component's inputs and execution properties. Code referenced by dotted path
(`preprocessing_fn=`, `run_fn=`) is neither, so an edit to it would silently reuse stale outputs. Passing
this fingerprint in `custom_config` makes any change to the trainer package re-run exactly the nodes that
execute it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import trainer_module

TRAINER_PACKAGE_DIR = Path(trainer_module.__file__).resolve().parent


def code_fingerprint(package_dir: Path = TRAINER_PACKAGE_DIR) -> str:
    """SHA-256 over the relative paths and contents of every .py file under `package_dir`."""
    digest = hashlib.sha256()
    for path in sorted(Path(package_dir).rglob("*.py")):
        digest.update(path.relative_to(package_dir).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def file_fingerprint(path: str | Path) -> str:
    """SHA-256 of one file's contents (the curated schema: ImportSchemaGen's cache key is only its path)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
