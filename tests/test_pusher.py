"""The atomic, de-duplicating Pusher executor on a model directory on disk."""

from __future__ import annotations

import os

from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.pusher import ALREADY_SERVED_KEY, Executor, served_versions


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
