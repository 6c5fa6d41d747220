"""Which process of a training cluster writes the model (TF_CONFIG), without starting one."""

from __future__ import annotations

import json

import pytest

from trainer_module.distribution import is_chief, task_name
from trainer_module.training_loop import newest_common


@pytest.mark.parametrize(
    "cluster, task, writes",
    [
        # Vertex: a chief and workers numbered from 0; only the chief writes.
        ({"chief": ["c:1"], "worker": ["w0:1", "w1:1"]}, {"type": "chief", "index": 0}, True),
        ({"chief": ["c:1"], "worker": ["w0:1", "w1:1"]}, {"type": "worker", "index": 0}, False),
        ({"chief": ["c:1"], "worker": ["w0:1", "w1:1"]}, {"type": "worker", "index": 1}, False),
        # No chief: worker 0 is the chief.
        ({"worker": ["w0:1", "w1:1"]}, {"type": "worker", "index": 0}, True),
        ({"worker": ["w0:1", "w1:1"]}, {"type": "worker", "index": 1}, False),
        (
            {"chief": ["c:1"], "worker": ["w0:1"], "evaluator": ["e:1"]},
            {"type": "evaluator", "index": 0},
            False,
        ),
    ],
)
def test_exactly_one_process_of_a_cluster_writes_the_model(cluster, task, writes, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": task}))
    assert is_chief() == writes


def test_a_single_process_writes_the_model(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert is_chief()


def test_each_process_names_its_place_in_the_cluster(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {}, "task": {"type": "worker", "index": 1}}))
    assert task_name() == "worker-1"
    monkeypatch.delenv("TF_CONFIG")
    assert task_name() == "chief-0"


@pytest.mark.parametrize(
    "held, step",
    [
        ([[50, 100], [50, 100]], 100),
        # Stopped between the chief's save of step 100 and the worker's: both resume from 50.
        ([[50, 100], [50, -1]], 50),
        ([[100, 150], [50, 100]], 100),
        ([[50, -1], [-1, -1]], 0),  # a worker holding nothing: every worker starts afresh
        ([[-1, -1], [-1, -1]], 0),
    ],
)
def test_workers_resume_from_the_newest_checkpoint_they_all_hold(held, step):
    assert newest_common(held) == step
