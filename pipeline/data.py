"""The bundled default data: the Palmer penguins table from the `palmerpenguins` package."""

from __future__ import annotations

from pathlib import Path

PENGUINS_FILE = "penguins.csv"


def write_penguins_csv(data_dir: str | Path, label: str | None = None) -> Path:
    """Writes the 344-row penguins table (missing values left empty) into `data_dir` if not there yet.

    Rows without a value for `label` are left out: a training example needs its label.
    """
    path = Path(data_dir) / PENGUINS_FILE
    if path.exists():
        return path
    from palmerpenguins import load_penguins

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    table = load_penguins()
    if label is not None:
        table = table.dropna(subset=[label])
    table.to_csv(tmp, index=False)
    # Renamed into place so that an interrupted write never leaves a truncated CSV for ExampleGen.
    tmp.replace(path)
    return path
