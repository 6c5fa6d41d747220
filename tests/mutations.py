"""Shows that the catalogue's and the suite's sharpened tests can fail: each mutation below breaks the
behaviour one test names, in a scratch copy of the checkout, and that test must then fail.

    .venv/bin/python tests/mutations.py            # the unit-test mutations, about 3 minutes
    .venv/bin/python tests/mutations.py --e2e      # also those whose tests need pipeline runs (about 15 min)
    .venv/bin/python tests/mutations.py NAME ...   # only these

Each line of the output: the mutation, the test, and whether the test failed as it must (`caught`). The
exit status is 1 when a mutation survived (its test passed) or did not apply (the code it edits changed).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Mutation:
    name: str
    path: str  # the file edited, relative to the checkout
    old: str  # replaced once; must occur exactly once
    new: str
    test: str  # the pytest node id that must fail
    e2e: bool = False  # its test needs pipeline runs


MUTATIONS = [
    Mutation(
        "huber-wrapper-closure",
        "trainer_module/losses.py",
        '    return HuberLossFunction(_check_positive("threshold", threshold))',
        '    threshold = _check_positive("threshold", threshold)\n'
        "    def huber_loss(y_true, y_pred):\n        return huber(y_true, y_pred, threshold)\n"
        "    return huber_loss",
        "tests/test_losses.py::test_the_wrappers_threshold_survives_saving",
    ),
    Mutation(
        "huber-linear-part-a-tenth",
        "trainer_module/losses.py",
        "threshold * (tf.abs(error) - threshold / 2))",
        "0.1 * threshold * (tf.abs(error) - threshold / 2))",
        "tests/test_losses.py::test_toy_regression_with_huber_needs_more_epochs_than_the_course_gives",
    ),
    Mutation(
        "early-stopping-without-baseline",
        "trainer_module/callbacks.py",
        "            baseline=config.early_stopping_baseline,\n",
        "",
        "tests/test_callbacks.py::test_min_delta_and_baseline_change_when_early_stopping_stops",
    ),
    Mutation(
        "early-stopping-min-delta-fixed",
        "trainer_module/callbacks.py",
        "            min_delta=config.early_stopping_min_delta,\n",
        "",
        "tests/test_callbacks.py::test_min_delta_and_baseline_change_when_early_stopping_stops",
    ),
    Mutation(
        "checkpoint-keeps-last-epoch",
        "trainer_module/callbacks.py",
        "            self.model.load_weights(self.filepath)\n",
        "            pass\n",
        "tests/test_callbacks.py::test_the_checkpoint_gives_the_model_its_best_validation_epoch",
    ),
    Mutation(
        "batch-timing-one-epoch",
        "trainer_module/callbacks.py",
        "        self.epoch_times.append([])\n\n    def on_train_batch_begin",
        "        self.epoch_times = self.epoch_times or [[]]\n\n    def on_train_batch_begin",
        "tests/test_callbacks.py::test_batch_timing_logs_and_records_each_epochs_batches",
    ),
    Mutation(
        "plateau-factor-ignored",
        "trainer_module/callbacks.py",
        "factor=config.reduce_lr_factor,",
        "factor=0.2,",
        "tests/test_callbacks.py::test_every_configured_callback_is_built_in_order_with_its_settings",
    ),
    Mutation(
        "denormalize-config-drops-stddev",
        "trainer_module/layers.py",
        '{**super().get_config(), "mean": self.mean, "stddev": self.stddev}',
        '{**super().get_config(), "mean": self.mean}',
        "tests/test_layers.py::test_config_holds_every_constructor_argument",
    ),
    Mutation(
        "siamese-two-bases",
        "trainer_module/models.py",
        "([base(left), base(right)])\n    return tf.keras.Model([left, right]",
        "([base(left), build_siamese_base(input_shape, units, dropout)(right)])\n"
        "    return tf.keras.Model([left, right]",
        "tests/test_catalogue_models.py::test_siamese_branches_share_one_base",
    ),
    Mutation(
        "huber-default-threshold",
        "trainer_module/optimization.py",
        '"huber": lambda: losses.Huber(threshold=config.huber_threshold),',
        '"huber": lambda: losses.Huber(),',
        "tests/test_config.py::test_every_named_loss_gives_its_value_on_a_known_input",
    ),
    Mutation(
        "rmsprop-is-adam",
        "trainer_module/optimization.py",
        '"rmsprop": tf.keras.optimizers.RMSprop,',
        '"rmsprop": tf.keras.optimizers.Adam,',
        "tests/test_config.py::test_every_named_optimizer_takes_its_step",
    ),
    Mutation(
        "loop-loss-doubled",
        "trainer_module/training_loop.py",
        "        loss = loss_fn(y, predictions)\n",
        "        loss = 2 * loss_fn(y, predictions)\n",
        "tests/test_training_loop.py::test_the_loops_tape_gives_the_courses_exact_gradients",
    ),
    Mutation(
        "one-device-is-default",
        "trainer_module/distribution.py",
        '    if name == "default":\n',
        '    if name in ("default", "one_device"):\n',
        "tests/test_distributed.py::test_one_device_places_everything_on_one_device_and_trains_as_without_a_strategy",
    ),
    Mutation(
        "empty-cells-present",
        "pipeline/report/reading.py",
        "    if common.max_num_values <= 1:\n",
        "    if False:\n",
        "tests/test_report_unit.py::test_empty_cells_count_as_examples_without_a_value",
    ),
    Mutation(
        "byte-order-mark-kept",
        "pipeline/csv_check.py",
        'text = raw.decode("utf-8-sig")',
        'text = raw.decode("utf-8")',
        "tests/reliability/test_csv_check.py::test_every_common_dialect_goes_through_as_the_same_examples",
    ),
    Mutation(
        "fixed-accuracy-gate",
        "pipeline/configure.py",
        "    return round(majority_share + MAJORITY_ERRORS_REMOVED * (1 - majority_share), 4)",
        "    return 0.9",
        "tests/test_cli.py::test_integer_label_with_two_values_is_binary_classification_with_auc",
    ),
    Mutation(
        "tensorboard-logs-elsewhere",
        "trainer_module/callbacks.py",
        'tf.keras.callbacks.TensorBoard(log_dir=run_dir, update_freq="epoch")',
        'tf.keras.callbacks.TensorBoard(log_dir=os.path.join(run_dir, "elsewhere"), update_freq="epoch")',
        "tests/test_pipeline_e2e.py::test_tensorboard_logs_written_by_trainer",
        e2e=True,
    ),
    Mutation(
        "batch-timing-not-recorded",
        "trainer_module/run.py",
        '            records["batch_timing"] = callback.per_epoch()\n',
        "            pass\n",
        "tests/test_pipeline_e2e.py::test_training_logs_show_the_catalogue_at_work",
        e2e=True,
    ),
    Mutation(
        "detect-overfitting-never-stops",
        "trainer_module/callbacks.py",
        "        if self.last_ratio > self.threshold:\n",
        "        if False:\n",
        "tests/test_pipeline_e2e.py::test_detect_overfitting_stops_a_pipeline_runs_training",
        e2e=True,
    ),
]


def scratch_copy(destination: Path) -> None:
    """The checkout's tracked and new files (no virtual environment, no outputs)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def apply(mutation: Mutation, root: Path) -> bool:
    path = root / mutation.path
    text = path.read_text()
    if text.count(mutation.old) != 1:
        return False
    path.write_text(text.replace(mutation.old, mutation.new))
    return True


def check(mutation: Mutation) -> str:
    with tempfile.TemporaryDirectory(prefix=f"mutation-{mutation.name}-") as scratch:
        root = Path(scratch)
        scratch_copy(root)
        if not apply(mutation, root):
            return "did not apply"
        # The scratch copy first on the path, also for the processes the tests start (the virtual
        # environment's editable install points at the checkout).
        env = {**os.environ, "PYTHONPATH": str(root)}
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", mutation.test],
            cwd=root, capture_output=True, text=True, env=env,
        )  # fmt: skip
    if result.returncode == 1:
        return "caught"
    return "SURVIVED" if result.returncode == 0 else f"pytest exit {result.returncode}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="only these mutations")
    parser.add_argument("--e2e", action="store_true", help="also those whose tests need pipeline runs")
    args = parser.parse_args()
    chosen = [m for m in MUTATIONS if (m.name in args.names if args.names else args.e2e or not m.e2e)]
    outcomes = {}
    for mutation in chosen:
        outcomes[mutation.name] = check(mutation)
        print(f"{mutation.name:<34} {outcomes[mutation.name]:<14} {mutation.test}", flush=True)
    return 0 if set(outcomes.values()) <= {"caught"} else 1


if __name__ == "__main__":
    sys.exit(main())
