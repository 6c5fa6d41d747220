"""The bundled default data: the Palmer penguins table from the `palmerpenguins` package, and the digits
images of scikit-learn (pipeline/images.py)."""

from __future__ import annotations

from pathlib import Path

PENGUINS_FILE = "penguins.csv"


def write_penguins_csv(data_dir: str | Path, labels: tuple[str, ...] = ()) -> Path:
    """Writes the 344-row penguins table (missing values left empty) into `data_dir` if not there yet.

    Rows without a value for one of `labels` are left out: a training example needs its labels.
    """
    path = Path(data_dir) / PENGUINS_FILE
    if path.exists():
        return path
    from palmerpenguins import load_penguins

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    table = load_penguins()
    if labels:
        table = table.dropna(subset=list(labels))
    table.to_csv(tmp, index=False)
    # Renamed into place so that an interrupted write never leaves a truncated CSV for ExampleGen.
    tmp.replace(path)
    return path


# Measurement noise of the generated rows: about the instruments' resolution, so rows stay plausible.
_NOISE = (("bill_length_mm", 0.5), ("bill_depth_mm", 0.2), ("flipper_length_mm", 1.0), ("body_mass_g", 25.0))


def generate_penguins(rows: int, seed: int = 0, drift: bool = False):
    """`rows` rows of the penguins schema: a seeded resample of the table with noise on the measurements,
    as more data from the same population (gaps kept where the resampled rows have them).

    `drift` moves 80% of the rows to Biscoe island and lengthens bills by 8 mm, as a change in where and
    how the data was collected.
    """
    import numpy as np
    from palmerpenguins import load_penguins

    rng = np.random.default_rng(seed)
    table = load_penguins().dropna(subset=["species"])
    frame = table.sample(n=rows, replace=True, random_state=seed).reset_index(drop=True)
    for column, scale in _NOISE:
        frame[column] = (frame[column] + rng.normal(0, scale, rows)).round(1)
    if drift:
        moved = rng.random(rows) < 0.8
        frame.loc[moved, "island"] = "Biscoe"
        frame["bill_length_mm"] = frame["bill_length_mm"] + 8.0
    return frame


def write_generated_penguins(path: str | Path, rows: int, seed: int = 0, drift: bool = False) -> Path:
    """Writes `generate_penguins(rows, seed, drift)` as one CSV file at `path` (renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    generate_penguins(rows, seed, drift).to_csv(tmp, index=False)
    tmp.replace(path)
    return path


def write_bundled_data(config) -> None:
    """Writes the bundled data of `config`'s task into its data directory, if not there yet; on object
    storage it is written here first, then copied up."""
    import tempfile

    from pipeline import images

    target = config.data_dir
    if "://" in target:
        from tfx.dsl.io import fileio
        from tfx.utils import io_utils

        if fileio.exists(target) and fileio.listdir(target):
            return
        with tempfile.TemporaryDirectory() as local:
            write_bundled_data(config.replace(data_root=local))
            io_utils.copy_dir(local, target)
        return
    if config.images is None:
        write_penguins_csv(target, labels=tuple(config.labels))
    elif config.is_similarity:
        images.write_digit_pairs(target)
    else:
        images.write_digits(target)
