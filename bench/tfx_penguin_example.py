"""TFX's own penguin example (`tfx/examples/penguin/penguin_pipeline_local.py`, installed with TFX), run the
way ../shared/STACK.md describes, as the reference for the local run's wall time.

    .venv/bin/python -m bench.tfx_penguin_example

As shipped it reads `~/penguin/data/{labelled,unlabelled}/*.csv` (species as 0-2, `culmen_*` columns, the
measurements min-max scaled) and its module files from `~/penguin/`: this script writes them into a fresh
temporary HOME from the palmerpenguins table (the 333 complete rows). Its Tuner fails on this stack
(KerasTuner 1.4 rejects tf_keras models), so it runs with tuning off; everything else as shipped: the
BulkInferrer on, 100 training steps, Beam multi_processing on every core. The user module is referenced in
place (UNSUPPORTED_DO_NOT_PACKAGE_USER_MODULES): a uv environment has no pip to package it with.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MEASUREMENTS = ("culmen_length_mm", "culmen_depth_mm", "flipper_length_mm", "body_mass_g")

# Runs the example's own create_pipeline with its own arguments, tuning off.
DRIVER = """
from absl import flags
from tfx import v1 as tfx
from tfx.examples.penguin import penguin_pipeline_local as example

flags.FLAGS(["example"])
name = "penguin_local_keras"
root = example._penguin_root
tfx.orchestration.LocalDagRunner().run(example.create_pipeline(
    pipeline_name=name,
    pipeline_root=f"{example._tfx_root}/pipelines/{name}",
    data_root=example._data_root,
    module_file=f"{root}/penguin_utils_keras.py",
    accuracy_threshold=0.6,
    serving_model_dir=f"{root}/serving_model/{name}",
    metadata_path=f"{example._tfx_root}/metadata/{name}/metadata.db",
    user_provided_schema_path=None,
    enable_tuning=False,
    enable_bulk_inferrer=True,
    examplegen_input_config=None,
    examplegen_range_config_date=None,
    resolver_range_config=None,
    beam_pipeline_args=example._beam_pipeline_args_by_runner["DirectRunner"],
    enable_transform_input_cache=True,
    enable_example_diff=False,
))
"""


def write_example_home(home: Path) -> None:
    """`home/penguin/`: the example's data (processed as it expects) and module files."""
    import tfx.examples.penguin as examples
    from palmerpenguins import load_penguins

    table = load_penguins().dropna().rename(columns=lambda c: c.replace("bill_", "culmen_"))
    frame = table[["species", *MEASUREMENTS]].copy()
    frame["species"] = frame["species"].map({"Adelie": 0, "Chinstrap": 1, "Gentoo": 2})
    for column in MEASUREMENTS:
        low, high = frame[column].min(), frame[column].max()
        frame[column] = (frame[column] - low) / (high - low)
    penguin = home / "penguin"
    for split, columns in (("labelled", frame.columns), ("unlabelled", list(MEASUREMENTS))):
        (penguin / "data" / split).mkdir(parents=True)
        frame[columns].to_csv(penguin / "data" / split / "penguins_processed.csv", index=False)
    for module in ("penguin_utils_keras.py", "penguin_utils_base.py"):
        shutil.copy(Path(examples.__file__).with_name(module), penguin / module)


def timed_example_run() -> float:
    """Wall time of one run of the example in a fresh process and a fresh HOME."""
    from pipeline.local_runner import scratch_temp_dir

    with tempfile.TemporaryDirectory(prefix="bench-tfx-example-") as home:
        write_example_home(Path(home))
        # Its temporary files (TFX packages itself for each Beam component: 49 MB each) go under HOME.
        with scratch_temp_dir(home):
            env = {**os.environ, "HOME": home, "UNSUPPORTED_DO_NOT_PACKAGE_USER_MODULES": "1"}
            start = time.perf_counter()
            result = subprocess.run(
                [sys.executable, "-c", DRIVER], env=env, capture_output=True, text=True, cwd=home
            )
            wall = time.perf_counter() - start
        if result.returncode != 0:
            raise RuntimeError(f"TFX's penguin example failed:\n{result.stderr[-3000:]}")
        if not any(Path(home, "penguin", "serving_model").rglob("saved_model.pb")):
            raise RuntimeError("TFX's penguin example finished without pushing a model")
    return wall


if __name__ == "__main__":
    print(f"TFX penguin example: {timed_example_run():.1f} s")
