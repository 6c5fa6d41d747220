"""Does the Trainer's input pipeline keep up with training? Examples/second of the input pipeline alone and
of training steps fed by it, side by side in one process.

    .venv/bin/python -m bench.input_pipeline --rows 100000 --repeats 3

The data is what the Trainer reads: Transform's gzipped TFRecords of the data stage over `--rows` generated
rows (bench/data_stage.py). "input" runs `trainer_module.run.input_fn` (batches of the Trainer's batch
size, shuffled, the label split off) inside TensorFlow without training; "training" runs `fit` of the
default model on the same dataset; "training on batches in memory" runs `fit` on the first batches of the
same dataset held in memory (`take(...).cache().repeat()`), which waits on no input. The step-time
breakdown is the difference: a step fed by the input pipeline less a step on batches in memory is the time
the step waited on input. Each figure is the median over `--repeats` measurements, interleaved.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from bench.data_stage import OUTPUTS, measure
from bench.results import environment, write_section

TITLE = "Input pipeline vs training (`python -m bench.input_pipeline`)"
INPUT_BATCHES = 2000
EPOCHS, STEPS = 6, 500


def trainer_dataset(output_root: str):
    """(dataset, TFTransformOutput) as the Trainer builds them from the last data stage's Transform."""
    import tensorflow_transform as tft

    from pipeline.run_summary import latest_run
    from pipeline.tasks import task_config
    from trainer_module.config import TrainerConfig
    from trainer_module.run import input_fn

    config = task_config("penguin_species")
    outputs = latest_run(os.path.join(output_root, "metadata.sqlite"), config.pipeline_name).outputs
    transform_output = tft.TFTransformOutput(outputs["Transform"]["transform_graph"])
    files = [os.path.join(outputs["Transform"]["transformed_examples"], "Split-train", "*")]
    batch = TrainerConfig().batch_size
    return input_fn(files, transform_output, [config.label_key], batch), transform_output, batch


def input_throughput(dataset, batch: int) -> float:
    """Examples/second of producing batches inside TensorFlow (as `fit` consumes them, no Python per
    batch), after 20 warm-up batches."""
    import tensorflow as tf

    def count(batches: int):
        return dataset.take(batches).reduce(tf.constant(0, tf.int64), lambda n, _: n + 1)

    count(20)
    start = time.perf_counter()
    produced = int(count(INPUT_BATCHES))
    return produced * batch / (time.perf_counter() - start)


def default_model(dataset, transform_output):
    """The Trainer's default model for the penguin task, compiled."""
    from pipeline.tasks import task_config
    from trainer_module.config import TrainerConfig
    from trainer_module.run import build_model

    config = task_config("penguin_species")
    trainer = TrainerConfig(steps_per_epoch=STEPS, callbacks=())
    return build_model(transform_output, dataset, trainer, config.labels)


def training_throughput(dataset, transform_output, batch: int) -> float:
    """Examples/second of `fit` on the dataset: the median epoch after the first (which pays the tracing)."""
    import tensorflow as tf

    model = default_model(dataset, transform_output)
    seconds = []

    class EpochTimer(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.started)

    model.fit(dataset, epochs=EPOCHS, steps_per_epoch=STEPS, callbacks=[EpochTimer()], verbose=0)
    return statistics.median(STEPS * batch / s for s in seconds[1:])


def step_times(dataset, transform_output) -> tuple[float, float]:
    """(median milliseconds the training loop spent taking the next batch, median milliseconds of the
    training step): `STEPS` steps of the model's own compiled `train_step`, timed apart, after 20 warm-up
    steps. Taking a batch from a prefetched dataset costs the same whether it is fed by the input pipeline
    or held in memory unless the loop has to wait for it."""
    import tensorflow as tf

    model = default_model(dataset, transform_output)
    step = tf.function(lambda x, y: model.train_step((x, y)))
    iterator = iter(dataset)
    taking, stepping = [], []
    for i in range(20 + STEPS):
        started = time.perf_counter()
        features, labels = next(iterator)
        taken = time.perf_counter()
        logs = step(features, labels)
        float(logs["loss"])
        if i >= 20:
            taking.append(taken - started)
            stepping.append(time.perf_counter() - taken)
    return 1000 * statistics.median(taking), 1000 * statistics.median(stepping)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-input-") as root:
        measure(args.rows, workers=1, root=root)
        dataset, transform_output, batch = trainer_dataset(os.path.join(root, OUTPUTS))
        in_memory = dataset.take(STEPS).cache().repeat()
        figures = {"input": [], "training": [], "training on batches in memory": []}
        steps = {"input pipeline": [], "batches in memory": []}
        for _ in range(args.repeats):
            steps["input pipeline"].append(step_times(dataset, transform_output))
            steps["batches in memory"].append(step_times(in_memory, transform_output))
            figures["input"].append(input_throughput(dataset, batch))
            figures["training"].append(training_throughput(dataset, transform_output, batch))
            figures["training on batches in memory"].append(
                training_throughput(in_memory, transform_output, batch)
            )
    input_rate, training_rate, compute_rate = (statistics.median(v) for v in figures.values())
    step_ms, compute_ms = (1000 * batch / rate for rate in (training_rate, compute_rate))
    taking = {name: statistics.median(t for t, _ in v) for name, v in steps.items()}
    stepping = {name: statistics.median(s for _, s in v) for name, v in steps.items()}
    write_section(
        TITLE,
        f"{environment()}"
        f"- Transform's output of {args.rows:,} generated rows; batches of {batch}; the median (range) of "
        f"{args.repeats} measurements, interleaved, in one process. input: {INPUT_BATCHES} batches of the "
        f"Trainer's `input_fn` counted inside TensorFlow (`Dataset.reduce`, as `fit` consumes them); "
        "training: `fit` of the default model on the same "
        f"dataset, the median epoch of epochs 2-{EPOCHS} ({STEPS} steps each); training on batches in "
        f"memory: the same on the dataset's first {STEPS} batches cached in memory.\n\n"
        "| what | examples/s (median) | range |\n|---|---|---|\n"
        + "".join(
            f"| {name} | {statistics.median(v):,.0f} | {min(v):,.0f}-{max(v):,.0f} |\n"
            for name, v in figures.items()
        )
        + f"\nInput / training: {input_rate / training_rate:.1f}x.\n\n"
        f"A `fit` step fed by the input pipeline takes {step_ms:.3f} ms, one on batches in memory "
        f"{compute_ms:.3f} ms: the difference is about what producing a batch costs "
        f"({1000 * batch / input_rate:.3f} ms of CPU at the input rate above) on a machine whose 2 cores "
        "training shares with the input pipeline.\n\n"
        f"Step-time breakdown: {STEPS} steps of the model's compiled `train_step` in a Python loop, taking "
        "each batch (`next`) and stepping timed apart; the medians over the repeats of each repeat's median, "
        "milliseconds. The wait on input is what taking a batch from the input pipeline costs over taking "
        f"one from memory: {taking['input pipeline'] - taking['batches in memory']:+.3f} ms a step.\n\n"
        "| fed by | taking the next batch | training step |\n|---|---|---|\n"
        + "".join(f"| {name} | {taking[name]:.3f} | {stepping[name]:.3f} |\n" for name in steps),
    )


if __name__ == "__main__":
    main()
