"""TFX's own executors of the data stage (CsvExampleGen, StatisticsGen, Transform), each timed on a finished
data stage run's inputs with that run's execution properties, in one fresh process, in the pipeline's order.

    .venv/bin/python -m bench.tfx_executors ROOT      (ROOT: a bench.data_stage measurement's directory)

Prints one JSON object: seconds of each executor's `Do` (imports excluded). bench/floors.py runs it on a
small run, where the rows cost next to nothing, to measure what TFX's components cost whatever the rows.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

from bench.data_stage import OUTPUTS


def _artifact(artifact_type, uri: str, splits: tuple[str, ...] = ()):
    artifact = artifact_type()
    artifact.uri = uri
    if splits:
        artifact.split_names = json.dumps(list(splits))
    return artifact


def run_tfx_executors(root: str) -> dict[str, float]:
    """Seconds of each TFX executor's `Do` on the run under `root`, its outputs in a temporary directory."""
    from tfx.components.example_gen.csv_example_gen import executor as example_gen
    from tfx.components.statistics_gen import executor as statistics_gen
    from tfx.components.transform import executor as transform
    from tfx.types import standard_artifacts as types

    from bench.floors import artifact_path
    from pipeline.run_summary import execution_properties

    properties = execution_properties(os.path.join(root, OUTPUTS, "metadata.sqlite"))
    schema = _artifact(types.Schema, artifact_path(root, "ImportSchemaGen", "schema"))
    splits = ("train", "eval")
    seconds = {}
    with tempfile.TemporaryDirectory(prefix="bench-tfx-") as out:
        examples = _artifact(types.Examples, os.path.join(out, "examples"), splits)
        steps = (
            ("CsvExampleGen", example_gen.Executor, {}, {"examples": [examples]}, "FileBasedExampleGen"),
            (
                "StatisticsGen",
                statistics_gen.Executor,
                {"examples": [examples]},  # as the pipeline's StatisticsGen: no schema
                {"statistics": [_artifact(types.ExampleStatistics, os.path.join(out, "statistics"))]},
                "StatisticsGen",
            ),
            (
                "Transform",
                transform.Executor,
                {"examples": [examples], "schema": [schema]},
                {
                    "transform_graph": [_artifact(types.TransformGraph, os.path.join(out, "graph"))],
                    "transformed_examples": [
                        _artifact(types.Examples, os.path.join(out, "transformed"), splits)
                    ],
                },
                "Transform",
            ),
        )
        for name, executor_class, inputs, outputs, recorded_as in steps:
            context = executor_class.Context(tmp_dir=os.path.join(out, "tmp", name), unique_id=name)
            executor = executor_class(context)
            start = time.perf_counter()
            executor.Do(inputs, outputs, properties[recorded_as])
            seconds[name] = time.perf_counter() - start
    return seconds


if __name__ == "__main__":
    print(json.dumps(run_tfx_executors(sys.argv[1])))
