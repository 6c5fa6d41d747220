"""Floors of the rest of a run: each component after the data stage, timed in a whole
`python -m pipeline run --data-root DIR --schema FILE` on generated rows, beside the same work done by its
libraries directly, outside TFX and Beam, on that run's own artifacts:

    .venv/bin/python -m bench.run_floors --rows 1000000

- Trainer: `trainer_module.run`'s input pipeline over Transform's output, the task's model, `fit` for the
  run's step budget with its validation steps, and the SavedModel export with the serving signatures.
- Evaluator: the eval split's raw examples (ExampleGen's gzipped TFRecords) read by TensorFlow in batches
  of 1,000, the pushed model's `serving_default` on each batch, and the accuracy and per-class F1 overall
  and per slice of the task's slice feature computed with numpy (the Evaluator's metrics: accuracy, F1 per
  class, example counts, overall and per slice).
- ServingCheck: loading the pushed model and serving it one request batch, in this process (the component
  does it in a fresh interpreter).

Each floor is the median of `--repeats` runs in this process, after one unmeasured warm-up of the same work.
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


def _outputs(root: str) -> dict:
    from pipeline.run_summary import latest_run

    return latest_run(os.path.join(root, "outputs", "metadata.sqlite"), PIPELINE).outputs


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


def evaluator_floor(outputs: dict) -> int:
    """The Evaluator's work without TFMA and Beam; returns the examples evaluated."""
    import tensorflow as tf

    from pipeline.tasks import task_config

    task = task_config("penguin_species")
    feature = task.slice_features[0]
    serve = _serving_function(outputs)
    files = _eval_files(outputs)
    truth, slices, predicted = [], [], []
    for batch in tf.data.TFRecordDataset(files, "GZIP").batch(EVAL_BATCH).prefetch(2):
        label, sliced = _slices_and_labels(batch, task.label_key, feature)
        truth.append(label)
        slices.append(sliced)
        predicted.append(serve(examples=batch)["classes"].numpy())
    truth, slices, predicted = (np.concatenate(a) for a in (truth, slices, predicted))
    metrics = {"": accuracy_and_f1(truth, predicted)}
    for value in np.unique(slices):
        chosen = slices == value
        metrics[value] = accuracy_and_f1(truth[chosen], predicted[chosen])
    assert metrics[""][0] > 0.5, f"the pushed model's accuracy is {metrics[''][0]}"
    return len(truth)


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
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-run-floors-") as root:
        run = run_measure(args.rows, root=root, pipeline_name=PIPELINE)
        outputs = _outputs(root)
        floors = {
            "Trainer": lambda: trainer_floor(outputs, tempfile.mkdtemp(dir=root)),
            "Evaluator": lambda: evaluator_floor(outputs),
            "ServingCheck": lambda: serving_check_floor(outputs),
        }
        seconds = {}
        for name, work in floors.items():
            work()  # warm-up: imports, first traces
            seconds[name] = [timed(work)[0] for _ in range(args.repeats)]
            print(name, [f"{s:.1f}" for s in seconds[name]], flush=True)
    rows = "".join(
        f"| {name} | {spread(s)} | {run['components'][name]:.1f} | "
        f"{run['components'][name] / statistics.median(s):.1f}x |\n"
        for name, s in seconds.items()
    )
    write_section(
        TITLE,
        f"{environment()}"
        f"- One `python -m pipeline run --data-root` on {args.rows:,} generated rows (the bundled schema, "
        "in_memory; project = the component's seconds from the CLI's progress line), then each floor "
        f"{args.repeats} times in one process after a warm-up run of the same work (median, range); see "
        "`bench/run_floors.py` for what each floor does.\n\n"
        "| component | floor (s) | project (s) | project / floor |\n|---|---|---|---|\n" + rows,
    )


if __name__ == "__main__":
    main()
