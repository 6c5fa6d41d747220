"""Which process of a training cluster writes the model (TF_CONFIG), without starting one."""

from __future__ import annotations

import json

import pytest

from trainer_module.distribution import is_chief


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
