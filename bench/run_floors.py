"""Floors of the rest of a run: each component after the data stage, timed in a whole
`python -m pipeline run --data-root DIR --schema FILE` on generated rows, beside the same work done by its
libraries directly, outside TFX and Beam, on that run's own artifacts:

    .venv/bin/python -m bench.run_floors --rows 1000000

- Trainer: `trainer_module.run`'s input pipeline over Transform's output, the task's model, `fit` for the
  run's step budget with its validation steps, and the SavedModel export with the serving signatures.
- Evaluator: the eval split's raw examples (ExampleGen's gzipped TFRecords) read by TensorFlow in batches
  of 1,000, each model's `serving_default` on each batch (the candidate's, and on the run with a baseline
  the baseline's too), and the accuracy and per-class F1 overall and per slice of the task's slice feature
  computed with numpy (the Evaluator's metrics: accuracy, F1 per class, example counts, overall and per
  slice), plus a Beam pipeline's fixed cost (an in-process pipeline of one element). Measured twice: on
  the first run (no baseline) and on a second run on the same data with another learning rate (its Trainer
  runs again; the first model, blessed and served, is its baseline, as on every scheduled run). Beside
  them, the project's and TFX's own Evaluator executors on the runs' Evaluator inputs.
- ServingCheck: loading the pushed model and serving it one request batch, in this process (the component
  does it in a fresh interpreter).

Each floor is the median of `--repeats` runs in this process, after one unmeasured warm-up of the same work;
the project's Evaluator executor on each run's Evaluator inputs is measured the same way, interleaved
with its floor (the run's own figure, one measurement in a fresh process, is shown too), TFX's executor
`--tfx-repeats` times after it.
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import tempfile

import numpy as np

from bench.floors import timed
from bench.large_run import measure as run_measure
from bench.results import environment, spread, write_section

TITLE = "Floors of a run after the data stage (`python -m bench.run_floors`)"
EVAL_BATCH = 1000
REQUESTS = 100  # examples in the serving check's request batch
PIPELINE = "floors"


def _store(root: str) -> str:
    return os.path.join(root, "outputs", "metadata.sqlite")


def _latest(root: str):
    from pipeline.run_summary import latest_run

    return latest_run(_store(root), PIPELINE)


def _outputs(root: str) -> dict:
    return _latest(root).outputs


def _serving_function(outputs: dict):
    """`serving_default` of the run's model, loaded as TF Serving loads it."""
    import tensorflow as tf
    from tfx.utils import path_utils

    return tf.saved_model.load(path_utils.serving_model_path(outputs["Trainer"]["model"])).signatures[
        "serving_default"
    ]


def _eval_files(outputs: dict) -> list[str]:
    """ExampleGen's eval split: the raw examples the Evaluator and the serving check read."""
    return sorted(glob.glob(os.path.join(outputs["CsvExampleGen"]["examples"], "Split-eval", "*")))


def trainer_floor(outputs: dict, out_dir: str) -> int:
    """The Trainer's work without TFX; returns the training steps run."""
    import tensorflow as tf
    import tensorflow_transform as tft

    from pipeline.tasks import task_config
    from trainer_module.run import build_model, input_fn, with_label_per_output
    from trainer_module.serving import make_serving_signatures
    from trainer_module.training_loop import train

    task = task_config("penguin_species")
    config = task.trainer
    transform_output = tft.TFTransformOutput(outputs["Transform"]["transform_graph"])
    examples = outputs["Transform"]["transformed_examples"]
    train_set, eval_set = (
        input_fn([os.path.join(examples, f"Split-{split}", "*")], transform_output, [task.label_key], batch)
        for split, batch in (("train", config.batch_size), ("eval", config.eval_batch_size))
    )
    model = build_model(transform_output, train_set, config, task.labels)
    epochs, per_epoch = config.epochs_for(task.train_steps)
    train(
        model,
        with_label_per_output(train_set, model),
        with_label_per_output(eval_set, model),
        config,
        epochs,
        per_epoch,
        task.eval_steps,
        [],
        tf.distribute.get_strategy(),
    )
    signatures = make_serving_signatures(model, transform_output, task.labels)
    model.save(os.path.join(out_dir, "model"), save_format="tf", signatures=signatures)
    return int(model.optimizer.iterations.numpy())


def _slices_and_labels(serialized, label: str, feature: str):
    import tensorflow as tf

    spec = {name: tf.io.VarLenFeature(tf.string) for name in (label, feature)}
    parsed = tf.io.parse_example(serialized, spec)
    return [tf.sparse.to_dense(parsed[name], default_value=b"")[:, 0].numpy() for name in (label, feature)]


def accuracy_and_f1(truth: np.ndarray, predicted: np.ndarray) -> tuple[float, dict]:
    """Accuracy and F1 per class (of the true classes) of string labels."""
    f1 = {}
    for cls in np.unique(truth):
        tp = np.sum((predicted == cls) & (truth == cls))
        precision = tp / max(np.sum(predicted == cls), 1)
        recall = tp / max(np.sum(truth == cls), 1)
        f1[cls] = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(np.mean(truth == predicted)), f1


def beam_fixed_cost() -> int:
    """An in-process Beam pipeline of one element: what any Beam job costs before its work."""
    import apache_beam as beam

    with beam.Pipeline() as pipeline:
        _ = pipeline | beam.Create([1]) | beam.Map(lambda x: x)
    return 1


def evaluator_floor(outputs: dict, baseline_model: str | None = None) -> int:
    """The Evaluator's work without TFMA: each model's inference on the eval split, the metrics with numpy,
    and a Beam pipeline's fixed cost; returns the examples evaluated."""
    import tensorflow as tf
    from tfx.utils import path_utils

    from pipeline.tasks import task_config

    task = task_config("penguin_species")
    feature = task.slice_features[0]
    models = [_serving_function(outputs)]
    if baseline_model:
        models.append(
            tf.saved_model.load(path_utils.serving_model_path(baseline_model)).signatures["serving_default"]
        )
    files = _eval_files(outputs)
    truth, slices, predicted = [], [], [[] for _ in models]
    for batch in tf.data.TFRecordDataset(files, "GZIP").batch(EVAL_BATCH).prefetch(2):
        label, sliced = _slices_and_labels(batch, task.label_key, feature)
        truth.append(label)
        slices.append(sliced)
        for found, serve in zip(predicted, models, strict=True):
            found.append(serve(examples=batch)["classes"].numpy())
    truth, slices = np.concatenate(truth), np.concatenate(slices)
    for found in predicted:
        found = np.concatenate(found)
        metrics = {"": accuracy_and_f1(truth, found)}
        for value in np.unique(slices):
            chosen = slices == value
            metrics[value] = accuracy_and_f1(truth[chosen], found[chosen])
        assert metrics[""][0] > 0.5, f"a model's accuracy is {metrics[''][0]}"
    beam_fixed_cost()
    return len(truth)


def evaluator_executor(root: str, run_id: str, executor_class=None) -> int:
    """An Evaluator executor (default: the project's) on the inputs of the run's Evaluator, its outputs in
    fresh directories; returns 1."""
    from components.evaluator import Executor, without_empty_baseline
    from pipeline.run_summary import node_execution

    _, inputs, outputs, properties = node_execution(_store(root), run_id, "Evaluator")
    written = {}
    for key, (artifact,) in outputs.items():
        copy = type(artifact)()
        copy.uri = tempfile.mkdtemp(dir=root)
        written[key] = [copy]
    (executor_class or Executor)().Do(without_empty_baseline(inputs), written, properties)
    return 1


def serving_check_floor(outputs: dict) -> int:
    """Loading the pushed model and serving it one request batch; returns the outputs' rows."""
    import tensorflow as tf

    files = _eval_files(outputs)
    requests = next(iter(tf.data.TFRecordDataset(files, "GZIP").batch(REQUESTS)))
    serve = _serving_function(outputs)
    return int(serve(examples=requests)["probabilities"].shape[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tfx-repeats", type=int, default=1, help="runs of TFX's Evaluator executor")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-run-floors-") as root:
        run = run_measure(args.rows, root=root, pipeline_name=PIPELINE)
        first = _latest(root)
        outputs = first.outputs
        # The second run: another learning rate, so its Trainer runs again and the first model is its
        # Evaluator's baseline.
        again = run_measure(
            args.rows, root=root, pipeline_name=PIPELINE, extra=("--set", "trainer.learning_rate=0.005")
        )
        second = _latest(root)
        baseline = _baseline_model(root, second.run_id)
        # name: (the floor, the project's work measured beside it in this process, or None)
        work = {
            "Trainer": (lambda: trainer_floor(outputs, tempfile.mkdtemp(dir=root)), None),
            "Evaluator": (
                lambda: evaluator_floor(outputs),
                lambda: evaluator_executor(root, first.run_id),
            ),
            "Evaluator, with a baseline": (
                lambda: evaluator_floor(second.outputs, baseline),
                lambda: evaluator_executor(root, second.run_id),
            ),
            "ServingCheck": (lambda: serving_check_floor(outputs), None),
        }
        seconds, project = {}, {}
        for name, (floor, ours) in work.items():
            pairs = [(floor, seconds.setdefault(name, []))]
            if ours:
                pairs.append((ours, project.setdefault(name, [])))
            for measured, _ in pairs:
                measured()  # warm-up: imports, first traces
            for _ in range(args.repeats):  # the floor and the project's work interleaved
                for measured, timing in pairs:
                    timing.append(timed(measured)[0])
            print(name, [f"{s:.1f}" for s in seconds[name]], [f"{s:.1f}" for s in project.get(name, [])])
        # TFX's executor after the project's: its imports and TensorFlow's are warm.
        from tfx.components.evaluator import executor as tfx_executor

        tfx = [
            timed(lambda: evaluator_executor(root, second.run_id, tfx_executor.Executor))[0]
            for _ in range(args.tfx_repeats)
        ]
    cli = {**run["components"], "Evaluator, with a baseline": again["components"]["Evaluator"]}
    rows = ""
    for name, floor in seconds.items():
        ours = project.get(name)
        ratio = (statistics.median(ours) if ours else cli[name]) / statistics.median(floor)
        measured = spread(ours) if ours else "-"
        rows += f"| {name} | {spread(floor)} | {measured} | {cli[name]:.1f} | {ratio:.1f}x |\n"
    ours_with_baseline = statistics.median(project["Evaluator, with a baseline"])
    write_section(
        TITLE,
        f"{environment()}"
        f"- `python -m pipeline run --data-root` on {args.rows:,} generated rows (the bundled schema, "
        "in_memory; run = the component's seconds from the CLI's progress line), then again on the same "
        "data with `--set trainer.learning_rate=0.005` (the Trainer runs again; the first model is the "
        f"Evaluator's baseline); then each floor {args.repeats} times in one process after a warm-up run of "
        "the same work (median, range), and beside it, the same way, the project's Evaluator executor on "
        "the run's Evaluator inputs (project); the ratio is project / floor where the project is measured "
        "in this process, else run / floor; see `bench/run_floors.py` for what each floor does.\n\n"
        "| component | floor (s) | project (s) | run (s) | project / floor |\n|---|---|---|---|---|\n"
        + rows
        + f"\nTFX's own Evaluator executor on the second run's inputs (the same models and data, in this "
        f"process, after the project's): {spread(tfx)} s, {statistics.median(tfx) / ours_with_baseline:.1f}x "
        "the project's Evaluator executor.\n",
    )


def _baseline_model(root: str, run_id: str) -> str:
    from pipeline.run_summary import node_execution

    _, inputs, _, _ = node_execution(_store(root), run_id, "Evaluator")
    (baseline,) = inputs["baseline_model"]
    return baseline.uri


if __name__ == "__main__":
    main()
