"""Tabular datasets nobody here wrote, written as CSV the way a user would bring them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes


def _blank_out(frame, columns, fraction, seed):
    """Empties `fraction` of the cells of each column, as missing values in a CSV."""
    rng = np.random.default_rng(seed)
    frame = frame.copy()
    for column in columns:
        rows = rng.choice(len(frame), size=max(1, int(fraction * len(frame))), replace=False)
        frame[column] = frame[column].astype(object)
        frame.loc[frame.index[rows], column] = None
    return frame


def write_breast_cancer(directory: Path) -> Path:
    """569 rows, 30 numeric columns with spaces in their names, a string column, gaps; label `target` 0/1."""
    frame = load_breast_cancer(as_frame=True).frame
    frame.insert(0, "size band", frame["mean radius"].map(lambda r: "small" if r < 12 else "large"))
    frame = _blank_out(frame, ["mean texture", "worst area", "size band"], 0.03, seed=0)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "breast_cancer.csv"
    frame.to_csv(path, index=False)
    return path


def write_diabetes(directory: Path) -> Path:
    """442 rows, 10 numeric columns with gaps, a `patient` id per row; float label `progression`, empty in 8
    rows (1.8%), as a user's table has rows not yet labelled."""
    frame = load_diabetes(as_frame=True).frame.rename(columns={"target": "progression"})
    frame.insert(0, "patient", [f"patient-{i:04d}" for i in range(len(frame))])
    frame["progression"] = frame["progression"].astype(float)
    frame = _blank_out(frame, ["bmi", "s5"], 0.03, seed=1)
    frame = _blank_out(frame, ["progression"], 0.02, seed=2)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "diabetes.csv"
    frame.to_csv(path, index=False)
    return path


def write_penguin_span(data_root: Path, span: int, seed: int, drift: bool = False) -> Path:
    """`data_root/span-<span>/penguins.csv`: a generated day of penguins data (see
    pipeline.data.generate_penguins), the size of the bundled table."""
    from pipeline.data import write_generated_penguins

    return write_generated_penguins(data_root / f"span-{span}" / "penguins.csv", 344, seed, drift)
