"""Training throughput (examples/second) of the Trainer's training loops, side by side in one run:
`fit` vs the custom GradientTape loop vs the custom loop with `jit_compile=True`, each on one device and
under MirroredStrategy over two logical CPU devices.

    .venv/bin/python -m bench.training_throughput --repeats 3

Each configuration runs in its own process (logical devices must be set before TensorFlow starts), `--repeats`
times, interleaved; a run trains the default tabular classifier (two hidden layers of 16) on 4 numeric and 2
categorical in-memory features, 8 epochs of 50 steps of 32 examples per replica, and reports the median
epoch throughput of epochs 2-8 (epoch 1 pays the tracing). Writes its section of bench/RESULTS.md (on a
GPU machine, a section of its own naming the card: `make bench-gpu`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from bench.results import environment, write_section

CONFIGS = [
    ("fit", "default", False),
    ("custom", "default", False),
    ("custom", "default", True),
    ("fit", "mirrored", False),
    ("custom", "mirrored", False),
]
EPOCHS, STEPS = 8, 50


def measure(loop: str, strategy: str, jit: bool) -> float:
    """In this process: the median examples/second over the epochs after the first."""
    import numpy as np
    import tensorflow as tf

    from trainer_module.config import TrainerConfig
    from trainer_module.distribution import build_strategy
    from trainer_module.models import build_classifier
    from trainer_module.training_loop import train

    tf.keras.utils.set_random_seed(0)
    config = TrainerConfig(loop=loop, strategy=strategy, jit_compile=jit, steps_per_epoch=STEPS, callbacks=())
    distribution = build_strategy(strategy)
    batch = config.batch_size * distribution.num_replicas_in_sync
    rng = np.random.default_rng(0)
    n = 4096
    features = {f"x{i}_xf": rng.normal(size=(n, 1)).astype("float32") for i in range(4)}
    features.update({f"c{i}_xf": rng.integers(0, 3, size=(n, 1)) for i in range(2)})
    labels = rng.integers(0, 3, size=(n, 1))
    data = tf.data.Dataset.from_tensor_slices((features, labels)).cache().repeat().batch(batch).prefetch(2)
    with distribution.scope():
        model = build_classifier([f"x{i}_xf" for i in range(4)], {f"c{i}_xf": 4 for i in range(2)}, 3, config)

    class EpochTimer(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.started)

    timer = EpochTimer()
    train(model, data, data, config, EPOCHS, STEPS, 1, [timer], distribution)
    return statistics.median(STEPS * batch / s for s in timer.seconds[1:])


def run_config(loop: str, strategy: str, jit: bool) -> float:
    argv = [sys.executable, "-m", "bench.training_throughput", "--measure", loop, strategy, str(int(jit))]
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])["examples_per_second"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--measure", nargs=3, metavar=("LOOP", "STRATEGY", "JIT"))
    args = parser.parse_args()
    if args.measure:
        loop, strategy, jit = args.measure
        if strategy == "mirrored":
            import tensorflow as tf

            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        print(json.dumps({"examples_per_second": measure(loop, strategy, jit == "1")}))
        return
    figures = {config: [] for config in CONFIGS}
    for _ in range(args.repeats):  # interleaved, so that machine noise spreads over every configuration
        for config in CONFIGS:
            figures[config].append(run_config(*config))
    baseline = statistics.median(figures[CONFIGS[0]])
    rows = []
    for (loop, strategy, jit), values in figures.items():
        name = f"{loop}{' + jit_compile' if jit else ''}"
        median = statistics.median(values)
        rows.append(
            f"| {name} | {strategy} | {median:,.0f} | {min(values):,.0f}-{max(values):,.0f} | "
            f"{median / baseline:.2f}x |"
        )
    custom = statistics.median(figures[("custom", "default", False)])
    device = gpu_name()
    write_section(
        f"Training throughput{f' on {device}' if device else ''} (`python -m bench.training_throughput`)",
        f"{environment()}{f'- Device: {device}' + chr(10) if device else ''}"
        "- The default tabular classifier (two hidden layers of 16) on 4 numeric and 2 categorical in-memory "
        f"features, 32 examples per replica per step, {EPOCHS} epochs of {STEPS} steps; a figure is the "
        f"median epoch throughput of epochs 2-{EPOCHS} of one run; the table gives the median and range of "
        f"{args.repeats} runs per configuration, each in its own process, the configurations interleaved. "
        '"mirrored" is MirroredStrategy over two logical devices of the one CPU (or the GPU).\n\n'
        "| loop | strategy | examples/s (median) | range | vs fit, one device |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\n"
        + f"The custom loop runs at {custom / baseline:.2f}x `fit` on one device (target: at least 0.95x).\n",
    )


def gpu_name() -> str | None:
    """The name of the GPU TensorFlow trains on (nvidia-smi's); None when TensorFlow sees none."""
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        return None
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True
        )
    except FileNotFoundError:
        return None
    return result.stdout.strip().splitlines()[0] if result.returncode == 0 and result.stdout.strip() else None


if __name__ == "__main__":
    main()
