"""Plot helper for comparing checkpoints (matplotlib is optional: the `plot` extra)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ._errors import ScaimindError

if TYPE_CHECKING:
    from ._models import Evaluation


def plot_compare(
    evaluations: Iterable[Evaluation],
    *,
    metric: str | None = None,
    thresholds: dict[str, float] | None = None,
    ax: Any = None,
) -> Any:
    """Grouped bars of each benchmark's score per checkpoint, with dashed threshold marks."""
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ScaimindError(
            "plot_compare needs matplotlib: pip install 'scaimind-nb[plot]'"
        ) from exc
    from ._frames import compare

    frame = compare(evaluations, metric=metric)
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.5, 1.6 + 1.2 * len(frame.index)), 3.2))
    width = 0.8 / max(1, len(frame.columns))
    for i, column in enumerate(frame.columns):
        xs = [x + i * width - 0.4 + width / 2 for x in range(len(frame.index))]
        ax.bar(xs, frame[column].tolist(), width=width, label=str(column))
    for x, bench in enumerate(frame.index):
        if thresholds and bench in thresholds:
            ax.hlines(thresholds[bench], x - 0.45, x + 0.45, colors="black", linestyles="dashed")
    ax.set_xticks(range(len(frame.index)), [str(b) for b in frame.index])
    ax.set_ylabel(metric or "primary metric")
    ax.set_ylim(0, max(1.0, float(frame.max().max()) if frame.size else 1.0))
    ax.legend(title="checkpoint", fontsize="small")
    ax.set_title("scores per checkpoint")
    return ax
