"""Data that arrives over time: `<data root>/span-<N>/*.csv`, one directory per delivery.

A run reads the newest span, or the newest K (`span_window`); the range is computed when the run is
launched and handed to ExampleGen as a static range, so the same pipeline compiles for Kubeflow. A
pipeline compiled with `read_spans` and no range (a recurring Kubeflow run) lets ExampleGen pick the
newest span itself each time it runs.
"""

from __future__ import annotations

import dataclasses
import os
import re

SPAN_DIR = re.compile(r"^span-(\d+)$")
SPAN_PATTERN = "span-{SPAN}/*"


def list_spans(data_dir: str) -> list[int]:
    """The span numbers under `data_dir` (a local path or a bucket URI), ascending; empty when the data is
    not split into spans."""
    from tfx.dsl.io import fileio

    if not fileio.isdir(data_dir):
        return []
    found = (SPAN_DIR.match(name.rstrip("/")) for name in fileio.listdir(data_dir))
    return sorted(int(m.group(1)) for m in found if m and fileio.isdir(os.path.join(data_dir, m.group(0))))


def latest_range(data_dir: str, window: int = 1) -> tuple[int, int] | None:
    """(first, last) span of the newest `window` spans, or None without spans."""
    spans = list_spans(data_dir)
    if not spans:
        return None
    return spans[max(0, len(spans) - window)], spans[-1]


def with_latest_spans(config):
    """`config` reading the newest spans of its data directory, when it has spans and no range yet."""
    if config.span_range is not None:
        return config
    window = latest_range(config.data_dir, config.span_window)
    return dataclasses.replace(config, span_range=window) if window else config
