"""Continuous retraining: run when a span newer than the last one processed has arrived, on a schedule."""

from __future__ import annotations

import time
from collections.abc import Callable

from pipeline.run_summary import run_summaries
from pipeline.spans import list_spans
from pipeline.storage.metadata import MetadataLocation, as_location


def last_processed_span(location: MetadataLocation | str, pipeline_name: str) -> int | None:
    """The newest span any run read: trained, refused by a gate, or failed after ExampleGen."""
    if not as_location(location).exists():
        return None
    spans = [s.span for s in run_summaries(location, pipeline_name) if s.span is not None]
    return max(spans, default=None)


def pending_span(config) -> tuple[int | None, str]:
    """(the newest span when it is new, else None; one line saying why)."""
    spans = list_spans(config.data_dir)
    if not spans:
        return None, f"no span-<N> directories in {config.data_dir}; nothing to retrain on"
    last = last_processed_span(config.metadata_store, config.pipeline_name)
    if last is not None and spans[-1] <= last:
        return (
            None,
            f"no new span: span {spans[-1]} is the newest in {config.data_dir} and was processed already",
        )
    return spans[-1], f"span {spans[-1]} is new (last processed: {'none' if last is None else last})"


def run_every(
    interval_s: float,
    check: Callable[[], object],
    max_checks: int | None = None,
    report: Callable[[str], object] = print,
    sleep: Callable[[float], object] = time.sleep,
) -> int:
    """Calls `check` every `interval_s` seconds, `max_checks` times (None: forever). A check that raises is
    reported and the schedule carries on. Returns the number of failed checks."""
    failures, done = 0, 0
    while max_checks is None or done < max_checks:
        started = time.monotonic()
        try:
            check()
        except Exception as error:  # noqa: BLE001 - a failed run must not stop the schedule
            failures += 1
            report(
                f"check failed ({type(error).__name__}: {' '.join(str(error).split())[:300]}); carrying on"
            )
        done += 1
        if max_checks is None or done < max_checks:
            sleep(max(0.0, interval_s - (time.monotonic() - started)))
    return failures


def parse_interval(text: str) -> float:
    """ "90s", "15m", "6h", "1d" or plain seconds -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        seconds = float(value) * units[unit]
    except ValueError:
        raise ValueError(f"interval {text!r} is not a duration; use e.g. 90s, 15m, 6h or 1d") from None
    if seconds <= 0:
        raise ValueError(f"interval {text!r} must be positive")
    return seconds
