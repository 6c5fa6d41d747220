"""The prediction columns, from the serving signature's outputs: per classification head the predicted class
and one probability per class, per regression head the value in the label's units, for a similarity model
the distance and `same`."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from trainer_module.features import REGRESSION, output_key


def column_names(spec: dict) -> list[str]:
    return [name for name, _ in _columns(spec)]


def _columns(spec: dict) -> list[tuple[str, tuple[str, int | None]]]:
    """(column, (serving output, index in the output's second dimension or None)) in column order."""
    if spec["pairs"]:
        return [("distance", ("distance", 0)), ("same", ("same", 0))]
    prefixed = len(spec["labels"]) > 1
    columns = []
    for label, task in spec["labels"]:
        if task == REGRESSION:
            columns.append((f"predicted_{label}", (output_key(label, "predictions", prefixed), 0)))
            continue
        columns.append((f"predicted_{label}", (output_key(label, "classes", prefixed), None)))
        probabilities = output_key(label, "probabilities", prefixed)
        columns += [
            (f"{label}_probability_{name}", (probabilities, index))
            for index, name in enumerate(spec["classes"][label])
        ]
    return columns


def prediction_columns(spec: dict, outputs: dict[str, np.ndarray]) -> dict[str, pa.Array]:
    """The prediction columns of a batch, from its outputs (name -> [batch, ...] array)."""
    columns = {}
    for name, (output, index) in _columns(spec):
        values = outputs[output]
        if index is not None:
            values = values.reshape(len(values), -1)[:, index]
        if values.dtype.kind in "SO":
            columns[name] = pa.array([v.decode() if isinstance(v, bytes) else v for v in values], pa.string())
        else:
            columns[name] = pa.array(values)
    return columns
