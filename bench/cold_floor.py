"""The floor of a cold run on this stack: the default task's work done by its libraries on Beam, without
TFX, in one fresh process, beside a cold `python -m pipeline run` on the same machine in the same session.

    .venv/bin/python -m bench.cold_floor --repeats 3     (part of: make bench)

A repetition runs the pipeline cold (an empty output root; wall time and the CLI's seconds per component),
then, in a fresh interpreter and on that run's own artifacts, one after another as a run does them:

- imports: TensorFlow, Beam, TFX, tf.Transform, TFDV and TFMA, the libraries a run uses, in a fresh
  interpreter of their own (start to exit), beside what the run spends outside its components (its imports,
  the CLI's checks and report, TFX's orchestration and ML Metadata between components, its exit);
- StatisticsGen: TFDV's `GenerateStatistics` over each split read by TFXIO's Beam source, written out;
- Transform: tf.Transform's `AnalyzeDataset` over the train split with the project's `preprocessing_fn`,
  `WriteTransformFn`, and `TransformDataset` over both splits, encoded and written as TFRecords;
- Trainer: the Trainer's work without TFX (`bench.run_floors.trainer_floor`: the input pipeline, the
  model, `fit` for the run's steps, the SavedModel with its serving signatures);
- Evaluator: TFMA's `ExtractEvaluateAndWriteResults` with the run's own EvalConfig on the eval split read
  by TFXIO's Beam source, the run's model, as TFX's executor runs it on a first run;
- ServingCheck: the model loaded and served ten eval examples in a fresh interpreter, by the serving
  check's own `probe_model` (`components.serving_probe`, which imports no project code), as the component
  does on purpose.

Each is timed the first time it runs in the process, as a cold run's components are. What a cold run adds
to this is TFX's: its orchestration, ML Metadata, each executor's own steps, and the project's gates.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile

from bench.results import environment, spread, write_section

TITLE = "Floor of a cold run (`python -m bench.cold_floor`)"
LIBRARIES = (
    "tensorflow",
    "apache_beam",
    "tfx",
    "tensorflow_transform",
    "tensorflow_data_validation",
    "tensorflow_model_analysis",
)
COMPONENTS = ("StatisticsGen", "Transform", "Trainer", "Evaluator", "ServingCheck")
PIPELINE = "penguin_species"  # the default task's pipeline
REQUESTS = 10


def statistics_floor(examples: str, schema, out_dir: str) -> None:
    import apache_beam as beam
    import tensorflow_data_validation as tfdv
    from tfx_bsl.public import tfxio

    with beam.Pipeline() as pipeline:
        for split in ("train", "eval"):
            source = tfxio.TFExampleRecord(os.path.join(examples, f"Split-{split}", "*"), schema=schema)
            _ = (
                pipeline
                | f"Read{split}" >> source.BeamSource()
                | f"Statistics{split}" >> tfdv.GenerateStatistics(tfdv.StatsOptions(schema=schema))
                | f"Write{split}" >> tfdv.WriteStatisticsToBinaryFile(os.path.join(out_dir, f"{split}.pb"))
            )


def transform_floor(examples: str, schema, custom_config: dict, out_dir: str) -> None:
    import apache_beam as beam
    import tensorflow_transform.beam as tft_beam
    from tfx_bsl.coders import example_coder
    from tfx_bsl.public import tfxio

    from trainer_module.preprocessing import preprocessing_fn

    def sources(split: str):
        return tfxio.TFExampleRecord(os.path.join(examples, f"Split-{split}", "*"), schema=schema)

    def encoded(batch_and_keys):
        return example_coder.RecordBatchToExamplesEncoder().encode(batch_and_keys[0])

    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=os.path.join(out_dir, "tmp")):
        train = sources("train")
        transform_fn = (
            pipeline | "ReadAnalysis" >> train.BeamSource(),
            train.TensorAdapterConfig(),
        ) | tft_beam.AnalyzeDataset(lambda inputs: preprocessing_fn(inputs, custom_config))
        _ = transform_fn | tft_beam.WriteTransformFn(os.path.join(out_dir, "transform_graph"))
        for split in ("train", "eval"):
            source = sources(split)
            data = (pipeline | f"Read{split}" >> source.BeamSource(), source.TensorAdapterConfig())
            transformed, _ = (data, transform_fn) | f"Transform{split}" >> tft_beam.TransformDataset(
                output_record_batches=True
            )
            _ = (
                transformed
                | f"Encode{split}" >> beam.FlatMap(encoded)
                | f"Write{split}"
                >> beam.io.WriteToTFRecord(os.path.join(out_dir, split, "examples"), file_name_suffix=".gz")
            )


def evaluator_floor(examples: str, schema, model_dir: str, eval_config_json: str, out_dir: str) -> None:
    """TFMA's `ExtractEvaluateAndWriteResults` over the eval split read by TFXIO, as TFX's executor runs it
    on a first run (no baseline: change thresholds rubber-stamped)."""
    import apache_beam as beam
    import tensorflow_model_analysis as tfma
    from google.protobuf import json_format
    from tfx_bsl.public import tfxio
    from tfx_bsl.tfxio import tensor_adapter

    eval_config = tfma.utils.update_eval_config_with_defaults(
        json_format.Parse(eval_config_json, tfma.EvalConfig()), has_baseline=False, rubber_stamp=True
    )
    source = tfxio.TFExampleRecord(
        os.path.join(examples, "Split-eval", "*"),
        schema=schema,
        raw_record_column_name=tfma.constants.ARROW_INPUT_COLUMN,
    )
    adapter_config = tensor_adapter.TensorAdapterConfig(
        arrow_schema=source.ArrowSchema(), tensor_representations=source.TensorRepresentations()
    )
    with beam.Pipeline() as pipeline:
        _ = (
            pipeline
            | "Read" >> source.BeamSource()
            | "Evaluate"
            >> tfma.ExtractEvaluateAndWriteResults(
                eval_shared_model=tfma.default_eval_shared_model(model_dir, eval_config=eval_config),
                eval_config=eval_config,
                output_path=out_dir,
                tensor_adapter_config=adapter_config,
            )
        )


def serving_floor(examples: str, model_dir: str) -> int:
    """The model served REQUESTS eval examples by a fresh interpreter, as the serving check has it served
    (`components.serving_check.probe_model`); the requests served."""
    import tensorflow as tf

    from components.serving_check import probe_model

    files = sorted(glob.glob(os.path.join(examples, "Split-eval", "*")))
    requests = [record.numpy() for record in tf.data.TFRecordDataset(files, "GZIP").take(REQUESTS)]
    report = probe_model(model_dir, requests)
    if not report["ok"]:
        raise RuntimeError(f"the model did not serve: {report['error']}")
    return report["requests"]


def child(root: str) -> dict:
    """In a fresh interpreter: each component's work by its libraries, each timed (imports first, untimed:
    they are timed on their own, in a fresh interpreter, as the run's are)."""
    os.environ["TF_USE_LEGACY_KERAS"] = "1"  # TFX 1.16's Keras 2, as the pipeline sets it
    for library in LIBRARIES:
        __import__(library)
    seconds = {}

    from tensorflow_metadata.proto.v0 import schema_pb2
    from tfx.utils import io_utils, path_utils

    from bench.floors import timed
    from bench.run_floors import trainer_floor
    from pipeline.run_summary import execution_properties

    outputs = _outputs(root)
    examples = outputs["CsvExampleGen"]["examples"]
    schema = io_utils.parse_pbtxt_file(
        os.path.join(outputs["ImportSchemaGen"]["schema"], "schema.pbtxt"), schema_pb2.Schema()
    )
    properties = execution_properties(os.path.join(root, "metadata.sqlite"))
    custom_config = json.loads(properties["Transform"]["custom_config"])
    eval_config = properties["Evaluator"]["eval_config"]
    model_dir = path_utils.serving_model_path(outputs["Trainer"]["model"])
    with tempfile.TemporaryDirectory(prefix="bench-cold-floor-") as scratch:
        work = {
            "StatisticsGen": lambda: statistics_floor(examples, schema, scratch),
            "Transform": lambda: transform_floor(examples, schema, custom_config, scratch),
            "Trainer": lambda: trainer_floor(outputs, scratch),
            "Evaluator": lambda: evaluator_floor(examples, schema, model_dir, eval_config, scratch),
            "ServingCheck": lambda: serving_floor(examples, model_dir),
        }
        for name, run in work.items():
            seconds[name], _ = timed(run)
    return seconds


def _outputs(root: str) -> dict:
    """The latest run's outputs by component, from the run's own output root."""
    from pipeline.run_summary import latest_run

    return latest_run(os.path.join(root, "metadata.sqlite"), PIPELINE).outputs


def one_repetition() -> dict:
    from bench.floors import import_seconds
    from bench.local_run import timed_run

    with tempfile.TemporaryDirectory(prefix="bench-cold-") as root:
        wall, components = timed_run(root)
        result = subprocess.run(
            [sys.executable, "-m", "bench.cold_floor", "--child", root],
            check=True,
            capture_output=True,
            text=True,
        )
    floor = json.loads(result.stdout.strip().splitlines()[-1])
    floor["imports"] = import_seconds(
        f"import os; os.environ['TF_USE_LEGACY_KERAS'] = '1'; import {', '.join(LIBRARIES)}"
    )
    return {"wall": wall, "project": components, "floor": floor}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", metavar="ROOT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)), flush=True)
        return
    runs = []
    for _ in range(args.repeats):
        runs.append(one_repetition())
        print(json.dumps(runs[-1]), flush=True)
    write_section(TITLE, report(runs))


def report(runs: list[dict]) -> str:
    lines = [
        environment(),
        "- The default task (penguin_species, 344 rows), Beam in_memory. Project: a cold `python -m "
        "pipeline run` (wall time; the CLI's seconds per component; imports and the rest: the wall time less "
        "the components'). Floor: the same work by the libraries on Beam in one fresh interpreter on that "
        "run's artifacts, and the libraries' imports in another (see the script's docstring). Medians; "
        "ranges where n > 1. A part's first-time costs (TensorFlow's runtime, the first traces) fall where "
        "it runs first, in the run and in the floor alike, so the whole run compares more exactly than its "
        "parts.\n",
        "| part | floor on this stack (s) | project (s) | project / floor |",
        "|---|---|---|---|",
    ]

    def row(name: str, floor: list[float], project: list[float]) -> str:
        ratio = statistics.median(project) / statistics.median(floor)
        return f"| {name} | {spread(floor)} | {spread(project)} | {ratio:.1f}x |"

    outside = [run["wall"] - sum(run["project"].values()) for run in runs]
    lines.append(
        row(
            "imports (the project: and the rest of the run)",
            [run["floor"]["imports"] for run in runs],
            outside,
        )
    )
    for name in COMPONENTS:
        lines.append(row(name, [run["floor"][name] for run in runs], [run["project"][name] for run in runs]))
    others = [sum(v for k, v in run["project"].items() if k not in COMPONENTS) for run in runs]
    lines.append(f"| the other components (ExampleGen, schema, gates, Pusher) | - | {spread(others)} | - |")
    lines.append(
        row("whole run", [sum(run["floor"].values()) for run in runs], [run["wall"] for run in runs])
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
