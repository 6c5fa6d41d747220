"""The floor of the data stage: each component's work done by its libraries directly, outside TFX and Beam,
through their batched C++ paths, beside the component's own time on the same rows in the same run.

    .venv/bin/python -m bench.floors --rows 1000000 --repeats 3     (part of: make bench)

A repetition runs the project's data stage on generated rows of the penguins table in a child process
(bench/data_stage.py, in_memory; seconds per component from ML Metadata), then, in this process and on that
run's own inputs and outputs, the floor of each component:

- CsvExampleGen: pyarrow's CSV reader over the file in blocks of the executor's size, tfx_bsl's
  RecordBatch-to-tf.Example encoder, TensorFlow's TFRecord writer (GZIP), once over the rows.
- StatisticsGen: TensorFlow's TFRecord reader and tfx_bsl's tf.Example decoder (batches of 1,000) and
  TFDV's statistics generators over those record batches (its in-memory path, the accumulators
  merged per batch), with the schema, for each split.
- Transform: the same reading and decoding (each split once: the train split's batches serve the
  analyzers and the graph); the preprocessing_fn's analyzers over the train split with
  pyarrow.compute (mean and variance of each number column, the value counts of each string column); the
  transform graph that run wrote applied to each batch of each split (TFTransformOutput's layer, traced
  once); the outputs encoded and written as above.
- imports: `import tensorflow, apache_beam, tfx, tensorflow_transform, tensorflow_data_validation` in a
  fresh interpreter, beside the project's own (`import pipeline.local_runner`), each in a fresh process.

What the components cost whatever the rows (Beam building and running a pipeline, tf.Transform tracing the
preprocessing_fn and writing its SavedModel) is measured on a small run of FIXED_ROWS rows in the same
repetition: TFX's own executors of the three components (bench/tfx_executors.py, one fresh process, the
run's execution properties) and the floors above on that run's data. The data stage's floor on this stack is
then the floors' work on the rows (each floor at full size less the same floor at FIXED_ROWS) plus each
component's fixed cost: the less of TFX's executor and the project's component at FIXED_ROWS.

The project's ExampleGen, StatisticsGen and Transform move examples through Beam in blocks and batches
(components/csv_example_gen.py, components/batched_examples.py), so Beam's cost of moving one element per
example, which TFX's own StatisticsGen and Transform pay, is not part of their work.

Reading files the run has just written is served from the page cache, as it is for the run's components.
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
import time
from collections.abc import Callable, Iterator

from bench.data_stage import OUTPUTS, measure
from bench.results import environment, spread, write_section

TITLE = "Floors of the data stage (`python -m bench.floors`)"
DECODE_BATCH = 1000  # tfx_bsl's cap on the batches TFDV's and TFT's Beam paths decode
LIBRARY_IMPORTS = "import tensorflow, apache_beam, tfx, tensorflow_transform, tensorflow_data_validation"
PROJECT_IMPORTS = "import pipeline.local_runner"
COMPONENTS = ("CsvExampleGen", "StatisticsGen", "Transform")
FIXED_ROWS = 1_000  # a run where the rows cost next to nothing


def artifact_path(root: str, component: str, name: str) -> str:
    (path,) = glob.glob(os.path.join(root, OUTPUTS, "*", component, name, "*"))
    return path


def _schema(root: str):
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tfx.utils import io_utils

    return io_utils.parse_pbtxt_file(
        os.path.join(artifact_path(root, "ImportSchemaGen", "schema"), "schema.pbtxt"), schema_pb2.Schema()
    )


def _record_batches(pattern: str, schema) -> Iterator:
    """Record batches of DECODE_BATCH examples of the files in `pattern`: TensorFlow's TFRecord reader
    (GZIP), tfx_bsl's tf.Example decoder."""
    import tensorflow as tf
    from tfx_bsl.coders import example_coder

    decoder = example_coder.ExamplesToRecordBatchDecoder(schema.SerializeToString())
    records = tf.data.TFRecordDataset(tf.io.gfile.glob(pattern), compression_type="GZIP")
    for batch in records.batch(DECODE_BATCH).as_numpy_iterator():
        yield decoder.DecodeBatch(list(batch))


def _write_examples(record_batches, path: str) -> int:
    """Encodes the record batches as tf.Examples with tfx_bsl and writes them GZIP'd; the count."""
    import tensorflow as tf
    from tfx_bsl.coders import example_coder

    count = 0
    encoder = example_coder.RecordBatchToExamplesEncoder()
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for batch in record_batches:
            for serialized in encoder.encode(batch):
                writer.write(serialized)
                count += 1
    return count


def example_gen_floor(csv_path: str, out_dir: str) -> int:
    """pyarrow's CSV reader in the executor's blocks, then encoding and writing: the rows written."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    from components.csv_example_gen import _FEATURE_TYPES, BLOCK_BYTES

    def batches():
        reader = pcsv.open_csv(csv_path, read_options=pcsv.ReadOptions(block_size=BLOCK_BYTES))
        for batch in reader:
            columns = [
                pa.ListArray.from_arrays(
                    pa.array(range(len(c) + 1), pa.int32()), c.cast(_FEATURE_TYPES.get(c.type, c.type))
                )
                for c in batch.columns
            ]
            yield pa.RecordBatch.from_arrays(columns, batch.schema.names)

    return _write_examples(batches(), os.path.join(out_dir, "examples.gz"))


def statistics_gen_floor(root: str) -> int:
    """TFDV's generators over each split's decoded record batches: the rows described."""
    from tensorflow_data_validation.statistics import stats_impl, stats_options

    schema = _schema(root)
    examples = artifact_path(root, "CsvExampleGen", "examples")
    rows = 0
    for split in ("train", "eval"):
        options = stats_options.StatsOptions(schema=schema)
        generators = stats_impl.get_generators(options, in_memory=True)
        accumulators = None
        for batch in _record_batches(os.path.join(examples, f"Split-{split}", "*"), schema):
            rows += batch.num_rows
            partial = stats_impl.generate_partial_statistics_in_memory(batch, options, generators)
            if accumulators is None:
                accumulators = partial
            else:
                pairs = zip(generators, accumulators, partial, strict=True)
                accumulators = [g.merge_accumulators([a, p]) for g, a, p in pairs]
        stats_impl.extract_statistics_output(accumulators, generators)
    return rows


def transform_floor(root: str, out_dir: str) -> int:
    """The analyzers over the train split, then the transform graph over both splits (the train split's
    batches decoded once for both), encoded and written: the rows transformed."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import tensorflow as tf
    import tensorflow_transform as tft
    from tfx_bsl.tfxio.tf_example_record import TFExampleRecord

    schema = _schema(root)
    examples = artifact_path(root, "CsvExampleGen", "examples")
    output = tft.TFTransformOutput(artifact_path(root, "Transform", "transform_graph"))

    train = list(_record_batches(os.path.join(examples, "Split-train", "*"), schema))
    table = pa.Table.from_batches(train)
    for name in table.column_names:
        values = pc.list_flatten(table[name])
        if pa.types.is_integer(values.type) or pa.types.is_floating(values.type):
            pc.mean(values), pc.variance(values)
        else:
            pc.value_counts(values)

    adapter = TFExampleRecord("", schema=schema).TensorAdapter()
    # One traced graph for all batches, as TFT's Beam path runs it (eager calls cost ~30 ms each).
    transform = tf.function(output.transform_features_layer())

    def transformed(batches) -> Iterator:
        for batch in batches:
            outputs = transform(adapter.ToBatchTensors(batch))
            arrays = {}
            for name, tensor in sorted(outputs.items()):
                flat = tensor.numpy().reshape(len(tensor), -1)
                arrays[name] = pa.ListArray.from_arrays(
                    pa.array(range(0, flat.size + 1, flat.shape[1]), pa.int32()), pa.array(flat.ravel())
                )
            yield pa.RecordBatch.from_pydict(arrays)

    evaluation = _record_batches(os.path.join(examples, "Split-eval", "*"), schema)
    return sum(
        _write_examples(transformed(batches), os.path.join(out_dir, f"transformed-{split}.gz"))
        for split, batches in (("train", train), ("eval", evaluation))
    )


def timed(work: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    count = work()
    return time.perf_counter() - start, count


def import_seconds(statement: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], check=True, capture_output=True)
    return time.perf_counter() - start


def _import_libraries() -> None:
    """What the floors use, imported before any is timed (imports are a line of their own)."""
    import tensorflow_data_validation.statistics.stats_impl  # noqa: F401
    import tensorflow_transform  # noqa: F401
    import tfx_bsl.tfxio.tf_example_record  # noqa: F401

    import components.csv_example_gen  # noqa: F401


def floor_seconds(root: str, rows: int) -> dict[str, float]:
    """Each component's floor on the data stage run under `root` of `rows` rows."""
    csv_path = os.path.join(root, "data", "penguins.csv")
    floors = {}
    for name, work in (
        ("CsvExampleGen", lambda: example_gen_floor(csv_path, root)),
        ("StatisticsGen", lambda: statistics_gen_floor(root)),
        ("Transform", lambda: transform_floor(root, root)),
    ):
        seconds, count = timed(work)
        if count != rows:
            raise RuntimeError(f"the {name} floor handled {count} rows, not {rows}")
        floors[name] = seconds
    return floors


def fixed_costs(seed: int) -> dict:
    """A FIXED_ROWS run: TFX's executors on it (in a fresh process), the floors and the project on it."""
    with tempfile.TemporaryDirectory(prefix="bench-fixed-") as root:
        project = measure(FIXED_ROWS, 1, seed, root=root)
        command = [sys.executable, "-m", "bench.tfx_executors", root]
        tfx = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        return {
            "tfx": tfx,
            "floor": floor_seconds(root, FIXED_ROWS),
            "project": {name: project["components"][name] for name in COMPONENTS},
        }


def one_repetition(rows: int, seed: int) -> dict:
    """The project's data stage, then each floor on that run's data: seconds per component and floor; the
    same on a FIXED_ROWS run, with TFX's executors."""
    _import_libraries()
    # The small run first: its floors then pay whatever a first call costs, which the floors' work on the
    # rows (the large floors less the small) then leaves out.
    fixed = fixed_costs(seed)
    with tempfile.TemporaryDirectory(prefix="bench-floors-") as root:
        project = measure(rows, 1, seed, root=root)
        floors = floor_seconds(root, rows)
    return {
        "project": {name: project["components"][name] for name in COMPONENTS},
        "stage_s": project["stage_s"],
        "peak_rss_mib": project["peak_rss_mib"],
        "floor": floors,
        "fixed": fixed,
        "imports": {"project": import_seconds(PROJECT_IMPORTS), "floor": import_seconds(LIBRARY_IMPORTS)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for seed in range(args.repeats):
        runs.append(one_repetition(args.rows, seed))
        print(json.dumps(runs[-1]), flush=True)
    write_section(TITLE, report(args.rows, runs))


def report(rows: int, runs: list[dict]) -> str:
    lines = [
        environment(),
        f"- {rows:,} generated rows of the penguins table; the project's figure is the component's time in "
        "its data stage run (in_memory, ML Metadata's registration to outcome), the floor the same work by "
        "its libraries directly on that run's data (see the script's docstring); imports each in a fresh "
        "interpreter. Medians; ranges where n > 1.\n",
        "| stage | floor (s) | project (s) | project / floor |",
        "|---|---|---|---|",
    ]
    parts = [
        (name, [run["floor"][name] for run in runs], [run["project"][name] for run in runs])
        for name in COMPONENTS
    ]
    parts.append(
        ("imports", [run["imports"]["floor"] for run in runs], [run["imports"]["project"] for run in runs])
    )
    for name, floor, project in parts:
        lines.append(
            f"| {name} | {spread(floor)} | {spread(project)} | "
            f"{statistics.median(project) / statistics.median(floor):.1f}x |"
        )
    stage = [run["stage_s"] for run in runs]
    floor_sum = [sum(run["floor"].values()) for run in runs]
    lines += [
        "",
        f"The whole data stage in those runs: {spread(stage)} s, "
        f"{rows / statistics.median(stage):,.0f} rows/s, peak RSS "
        f"{spread([run['peak_rss_mib'] for run in runs], 0)} MiB. The floors of its three components add up "
        f"to {spread(floor_sum)} s.",
        "",
        f"What the components cost whatever the rows: a run of {FIXED_ROWS:,} rows in each repetition, TFX's "
        "own executors on it (each `Do`, in one fresh process, in the pipeline's order), the floors and the "
        "project's components on it:",
        "",
        "| component | TFX's executor (s) | floor (s) | project (s) |",
        "|---|---|---|---|",
    ]
    for name in COMPONENTS:
        columns = [spread([run["fixed"][part][name] for run in runs]) for part in ("tfx", "floor", "project")]
        lines.append(f"| {name} | {' | '.join(columns)} |")
    on_rows = [sum(run["floor"].values()) - sum(run["fixed"]["floor"].values()) for run in runs]
    least_fixed = [
        sum(min(run["fixed"][part][name] for part in ("tfx", "project")) for name in COMPONENTS)
        for run in runs
    ]
    stage_floor = [work + fixed for work, fixed in zip(on_rows, least_fixed, strict=True)]
    lines += [
        "",
        f"The data stage's floor on this stack at {rows:,} rows: the floors' work on the rows, "
        f"{spread(on_rows)} s (the floors at {rows:,} rows less the same floors at {FIXED_ROWS:,}), plus "
        f"each component's fixed cost (the less of TFX's executor and the project's at {FIXED_ROWS:,} rows), "
        f"{spread(least_fixed)} s: {spread(stage_floor)} s. "
        f"The project's data stage is {statistics.median(stage) / statistics.median(stage_floor):.2f}x it.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
