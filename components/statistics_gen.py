"""TFX's StatisticsGen reading its examples by the batch (`batched_examples.BatchedExampleRecord`) instead of
through Beam's TFRecord source, one Beam element per example: the same TFDV statistics of the same
examples. The statistics also carry ExampleGen's count of the rows it read and left out for an empty label
and its check of the date columns (components/csv_example_gen.py), which the data gates check: on Kubeflow
the launcher copies every input artifact into the task's pod, and the statistics are a small fraction of
the examples."""

from __future__ import annotations

from unittest import mock

from tfx.components.statistics_gen import component as statistics_gen_component
from tfx.components.statistics_gen import executor as statistics_gen_executor
from tfx.components.util import tfxio_utils
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils

from components.batched_examples import batched
from components.csv_example_gen import carry_counts

_SPLIT_TFXIO = tfxio_utils.get_split_tfxio


def batched_split_tfxio(**kwargs):
    """tfxio_utils.get_split_tfxio's TFXIO, read by the batch."""
    return batched(_SPLIT_TFXIO(**kwargs))


class Executor(statistics_gen_executor.Executor):
    """TFX's StatisticsGen executor, its reader by the batch.

    TFX's `Do` builds each split's reader with `tfxio_utils.get_split_tfxio`, so `Do` runs with that name
    bound to `batched_split_tfxio` (executors run one at a time in a process: LocalDagRunner's in turn, a
    cluster's one per container)."""

    def Do(self, input_dict, output_dict, exec_properties):  # noqa: N802 (TFX's name)
        with mock.patch.object(tfxio_utils, "get_split_tfxio", batched_split_tfxio):
            super().Do(input_dict, output_dict, exec_properties)
        carry_counts(
            artifact_utils.get_single_instance(input_dict["examples"]),
            artifact_utils.get_single_instance(output_dict["statistics"]),
        )


class StatisticsGen(statistics_gen_component.StatisticsGen):
    """TFX's StatisticsGen with the executor above."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
