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
    """442 rows, 10 numeric columns with gaps; float label `progression`."""
    frame = load_diabetes(as_frame=True).frame.rename(columns={"target": "progression"})
    frame["progression"] = frame["progression"].astype(float)
    frame = _blank_out(frame, ["bmi", "s5"], 0.03, seed=1)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "diabetes.csv"
    frame.to_csv(path, index=False)
    return path


def write_penguin_span(data_root: Path, span: int, seed: int, drift: bool = False) -> Path:
    """`data_root/span-<span>/penguins.csv`: a seeded resample of the penguins table with a little noise on
    the measurements, as another day's data from the same population. `drift` moves 80% of the rows to
    Biscoe island and lengthens bills by 8 mm, as a change in where and how the data was collected."""
    from palmerpenguins import load_penguins

    rng = np.random.default_rng(seed)
    table = load_penguins().dropna(subset=["species"])
    frame = table.sample(n=len(table), replace=True, random_state=seed).reset_index(drop=True)
    for column, scale in (("bill_length_mm", 0.5), ("bill_depth_mm", 0.2), ("flipper_length_mm", 1.0)):
        frame[column] = (frame[column] + rng.normal(0, scale, len(frame))).round(1)
    if drift:
        moved = rng.random(len(frame)) < 0.8
        frame.loc[moved, "island"] = "Biscoe"
        frame["bill_length_mm"] = frame["bill_length_mm"] + 8.0
    directory = data_root / f"span-{span}"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "penguins.csv"
    frame.to_csv(path, index=False)
    return path
