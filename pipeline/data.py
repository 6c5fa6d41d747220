"""The bundled default data: the Palmer penguins table from the `palmerpenguins` package."""

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
