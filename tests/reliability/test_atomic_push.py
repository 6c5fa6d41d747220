"""The atomic, de-duplicating Pusher executor on a model directory on disk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.pusher import ALREADY_SERVED_KEY, INCOMPLETE_PREFIX, Executor, served_versions
from tests.conftest import REPO_ROOT


def make_model(tmp_path, name: str, weights: bytes):
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / name)
    serving = tmp_path / name / "Format-Serving"
    (serving / "variables").mkdir(parents=True)
    (serving / "saved_model.pb").write_bytes(b"graph")
    (serving / "variables" / "variables.data-00000-of-00001").write_bytes(weights)
    return model


def blessing(blessed: int):
    artifact = standard_artifacts.ModelBlessing()
    artifact.set_int_custom_property("blessed", blessed)
    return artifact


def push(tmp_path, model, blessed=1):
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / f"pushed-{len(os.listdir(tmp_path))}")
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(tmp_path / "serving"))
    )
    Executor().Do(
        {"model": [model], "model_blessing": [blessing(blessed)]},
        {"pushed_model": [pushed]},
        {"push_destination": proto_utils.proto_to_json(destination)},
    )
    return pushed


def test_push_writes_a_complete_numbered_version(tmp_path):
    pushed = push(tmp_path, make_model(tmp_path, "m1", b"w1"))
    versions = served_versions(str(tmp_path / "serving"))
    assert len(versions) == 1
    version_dir = tmp_path / "serving" / str(versions[0])
    assert (version_dir / "variables" / "variables.data-00000-of-00001").read_bytes() == b"w1"
    assert os.listdir(tmp_path / "serving") == [str(versions[0])]  # no staging directory left behind
    assert pushed.get_int_custom_property("pushed") == 1
    assert pushed.get_string_custom_property("pushed_destination") == str(version_dir)


def test_the_same_model_is_not_pushed_twice(tmp_path):
    push(tmp_path, make_model(tmp_path, "m1", b"w1"))
    again = push(tmp_path, make_model(tmp_path, "m1-rerun", b"w1"))
    versions = served_versions(str(tmp_path / "serving"))
    assert len(versions) == 1
    assert again.get_int_custom_property("pushed") == 0
    assert again.get_string_custom_property(ALREADY_SERVED_KEY) == str(
        tmp_path / "serving" / str(versions[0])
    )


def test_a_new_model_gets_a_higher_version_even_within_one_second(tmp_path):
    push(tmp_path, make_model(tmp_path, "m1", b"w1"))
    push(tmp_path, make_model(tmp_path, "m2", b"w2"))
    versions = served_versions(str(tmp_path / "serving"))
    assert len(versions) == 2 and versions[0] < versions[1]
    latest = tmp_path / "serving" / str(versions[1]) / "variables" / "variables.data-00000-of-00001"
    assert latest.read_bytes() == b"w2"


def test_an_unblessed_model_is_never_pushed(tmp_path):
    pushed = push(tmp_path, make_model(tmp_path, "m1", b"w1"), blessed=0)
    assert pushed.get_int_custom_property("pushed") == 0
    assert served_versions(str(tmp_path / "serving")) == []


# Pushes model directory argv[2] from a process that SIGKILLs itself once the first file has been copied.
KILLED_MID_COPY = """
import os, signal, sys
from pathlib import Path
from tfx.dsl.io import fileio
from tests.reliability.test_atomic_push import push

real_copy = fileio.copy
def copy_then_die(*args, **kwargs):
    real_copy(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
fileio.copy = copy_then_die
model = __import__("tfx.types.standard_artifacts", fromlist=["Model"]).Model()
model.uri = sys.argv[2]
push(Path(sys.argv[1]), model)
"""


def test_a_push_killed_mid_copy_serves_nothing_partial_and_the_next_push_cleans_up(tmp_path):
    push(tmp_path, make_model(tmp_path, "m1", b"w1"))
    [served] = served_versions(str(tmp_path / "serving"))
    candidate = make_model(tmp_path, "m2", b"w2")
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_MID_COPY, str(tmp_path), candidate.uri],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    entries = sorted(os.listdir(tmp_path / "serving"))
    # The served version untouched; the half-copied one only under a name no model server loads.
    assert served_versions(str(tmp_path / "serving")) == [served]
    [staging] = [e for e in entries if e != str(served)]
    assert staging.startswith(INCOMPLETE_PREFIX)
    copied = [f for _, _, files in os.walk(tmp_path / "serving" / staging) for f in files]
    assert len(copied) == 1  # killed after the first of the model's two files

    push(tmp_path, candidate)
    versions = served_versions(str(tmp_path / "serving"))
    assert versions[0] == served and len(versions) == 2
    assert sorted(os.listdir(tmp_path / "serving")) == [str(v) for v in versions]
    latest = tmp_path / "serving" / str(versions[1])
    assert (latest / "variables" / "variables.data-00000-of-00001").read_bytes() == b"w2"
    assert (latest / "saved_model.pb").read_bytes() == b"graph"
