"""Does the Trainer's input pipeline keep up with training? Examples/second of the input pipeline alone and
of training steps fed by it, side by side in one process.

    .venv/bin/python -m bench.input_pipeline --rows 100000 --repeats 3

The data is what the Trainer reads: Transform's gzipped TFRecords of the data stage over `--rows` generated
rows (bench/data_stage.py). "input" runs `trainer_module.run.input_fn` (TFX's dataset factory, batches
of the Trainer's batch size, then the label split off) inside TensorFlow without training; "training"
runs `fit` of the default model on the same dataset. Each figure is the median over `--repeats`
measurements, interleaved.
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import tempfile
import time

from bench.data_stage import OUTPUTS, measure
from bench.results import environment, write_section

TITLE = "Input pipeline vs training (`python -m bench.input_pipeline`)"
INPUT_BATCHES = 2000
EPOCHS, STEPS = 6, 100


def trainer_dataset(output_root: str):
    """(dataset, TFTransformOutput) as the Trainer builds them from the last data stage's Transform."""
    import tensorflow_transform as tft
    from tfx.components.trainer.fn_args_utils import DataAccessor
    from tfx.components.util import tfxio_utils
    from tfx.proto import example_gen_pb2

    from pipeline.run_summary import latest_run
    from pipeline.tasks import task_config
    from trainer_module.config import TrainerConfig
    from trainer_module.run import input_fn

    config = task_config("penguin_species")
    outputs = latest_run(os.path.join(output_root, "metadata.sqlite"), config.pipeline_name).outputs
    transform_output = tft.TFTransformOutput(outputs["Transform"]["transform_graph"])
    files = glob.glob(os.path.join(outputs["Transform"]["transformed_examples"], "Split-train", "*"))

    def factory(file_pattern, options, schema):
        return tfxio_utils.make_tfxio(
            file_pattern, ["Trainer"], example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE, schema=schema
        ).TensorFlowDataset(options)

    accessor = DataAccessor(factory, None, None)
    batch = TrainerConfig().batch_size
    return input_fn(files, accessor, transform_output, [config.label_key], batch), transform_output, batch


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


def training_throughput(dataset, transform_output, batch: int) -> float:
    """Examples/second of `fit` on the dataset: the median epoch after the first (which pays the tracing)."""
    import tensorflow as tf

    from pipeline.tasks import task_config
    from trainer_module.config import TrainerConfig
    from trainer_module.run import build_model

    config = task_config("penguin_species")
    trainer = TrainerConfig(steps_per_epoch=STEPS, callbacks=())
    model = build_model(transform_output, dataset, trainer, config.labels)
    seconds = []

    class EpochTimer(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.started)

    model.fit(dataset, epochs=EPOCHS, steps_per_epoch=STEPS, callbacks=[EpochTimer()], verbose=0)
    return statistics.median(STEPS * batch / s for s in seconds[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-input-") as root:
        measure(args.rows, workers=1, root=root)
        dataset, transform_output, batch = trainer_dataset(os.path.join(root, OUTPUTS))
        figures = {"input": [], "training": []}
        for _ in range(args.repeats):
            figures["input"].append(input_throughput(dataset, batch))
            figures["training"].append(training_throughput(dataset, transform_output, batch))
    input_rate, training_rate = (statistics.median(figures[k]) for k in ("input", "training"))
    write_section(
        TITLE,
        f"{environment()}"
        f"- Transform's output of {args.rows:,} generated rows; batches of {batch}; the median (range) of "
        f"{args.repeats} measurements, interleaved, in one process. input: {INPUT_BATCHES} batches of the "
        f"Trainer's `input_fn` counted inside TensorFlow (`Dataset.reduce`, as `fit` consumes them); "
        "training: `fit` of the default model on the same "
        f"dataset, the median epoch of epochs 2-{EPOCHS} ({STEPS} steps each).\n\n"
        "| what | examples/s (median) | range |\n|---|---|---|\n"
        + "".join(
            f"| {name} | {statistics.median(v):,.0f} | {min(v):,.0f}-{max(v):,.0f} |\n"
            for name, v in figures.items()
        )
        + f"\nInput / training: {input_rate / training_rate:.1f}x.\n",
    )


if __name__ == "__main__":
    main()
