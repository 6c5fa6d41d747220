"""The report's plots: matplotlib figures as base64 PNG data, embedded in the page so that it opens
anywhere, offline."""

from __future__ import annotations

import base64
import io

from pipeline.report.reading import SliceMetrics


def _png(figure) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def training_curves(history: dict[str, list[float]]) -> str | None:
    """One panel per metric, train and validation by epoch; a base64 PNG (None without history)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [k for k in history if not k.startswith("val_") and k != "lr"]
    if not metrics:
        return None
    from matplotlib.ticker import MaxNLocator

    columns = min(3, len(metrics))
    rows = -(-len(metrics) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False)
    for axis in axes.flat[len(metrics) :]:
        axis.set_visible(False)
    for axis, name in zip(axes.flat, metrics, strict=False):
        epochs = range(1, len(history[name]) + 1)
        axis.plot(epochs, history[name], marker="o", label="train")
        if f"val_{name}" in history:
            axis.plot(epochs, history[f"val_{name}"], marker="o", label="validation")
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    return _png(figure)


def slice_chart(slices: list[SliceMetrics], metric: str) -> str | None:
    """The gated metric per slice, the candidate beside the baseline; a base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [s for s in slices if metric in s.candidate]
    if len(shown) < 2:
        return None
    figure, axis = plt.subplots(figsize=(min(12, 1.0 + 0.7 * len(shown)), 3.0))
    positions = range(len(shown))
    with_baseline = any(metric in s.baseline for s in shown)
    width = 0.4 if with_baseline else 0.7
    offset = width / 2 if with_baseline else 0
    axis.bar([p - offset for p in positions], [s.candidate[metric] for s in shown],
             width, label="candidate")  # fmt: skip
    if with_baseline:
        axis.bar([p + width / 2 for p in positions], [s.baseline.get(metric, 0.0) for s in shown], width,
                 label="baseline")  # fmt: skip
    axis.set_xticks(list(positions), [s.name.replace(" = ", "=") for s in shown], rotation=45, ha="right")
    axis.set_title(f"{metric} per slice")
    axis.grid(axis="y", alpha=0.3)
    axis.legend()
    return _png(figure)
