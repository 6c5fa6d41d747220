"""Fingerprints that make the cache notice code and schema edits."""

from __future__ import annotations

import shutil

from pipeline.fingerprint import TRAINER_PACKAGE_DIR, code_fingerprint, file_fingerprint


def test_code_fingerprint_changes_with_any_trainer_source_edit(tmp_path):
    copy = tmp_path / "trainer_module"
    shutil.copytree(TRAINER_PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    original = code_fingerprint(copy)
    assert original == code_fingerprint(TRAINER_PACKAGE_DIR)

    model = copy / "models.py"
    model.write_text(model.read_text().replace('activation="relu"', 'activation="tanh"'))
    edited = code_fingerprint(copy)
    assert edited != original

    (copy / "new_layer.py").write_text("X = 1\n")
    assert code_fingerprint(copy) not in (original, edited)


def test_code_fingerprint_ignores_compiled_files(tmp_path):
    copy = tmp_path / "pkg"
    copy.mkdir()
    (copy / "a.py").write_text("A = 1\n")
    before = code_fingerprint(copy)
    (copy / "a.pyc").write_bytes(b"\x00\x01")
    assert code_fingerprint(copy) == before


def test_file_fingerprint_follows_contents(tmp_path):
    schema = tmp_path / "schema.pbtxt"
    schema.write_text('feature { name: "a" type: FLOAT }\n')
    before = file_fingerprint(schema)
    schema.write_text('feature { name: "a" type: INT }\n')
    assert file_fingerprint(schema) != before
