"""Plot helper for comparing checkpoints (matplotlib is optional: the `plot` extra)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ._errors import ScaimindError

if TYPE_CHECKING:
    from ._client import Client


def plot_compare(
    evaluations: Iterable[Any],
    *,
    metric: str | None = None,
    thresholds: Mapping[str, float] | None = None,
    baseline: Any = None,
    confidence: float = 0.95,
    client: Client | None = None,
    ax: Any = None,
) -> Any:
    """Grouped bars of each benchmark's score per checkpoint with their confidence intervals.

    `evaluations` are runs, Evaluations or a `compare` result. Error bars are the intervals of
    `compare` (Wilson for proportions, else normal from the reported standard error); dashed
    marks are `thresholds`; the y axis names the metric; the legend sits beside the axes, clear
    of the bars.
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ScaimindError(
            "plot_compare needs matplotlib: pip install 'scaimind-nb[plot]'"
        ) from exc
    from ._frames import compare
    from ._views import ComparisonFrame

    frame = (
        evaluations
        if isinstance(evaluations, ComparisonFrame)
        else compare(evaluations, metric, baseline=baseline, confidence=confidence, client=client)
    )
    if ax is None:
        _, ax = plt.subplots(
            figsize=(max(5.5, 3.2 + 1.2 * len(frame.index)), 3.4), layout="constrained"
        )
    stats = frame.stats.set_index(["benchmark", "evaluation"])
    width = 0.8 / max(1, len(frame.columns))
    for i, column in enumerate(frame.columns):
        xs = [x + i * width - 0.4 + width / 2 for x in range(len(frame.index))]
        heights = frame[column].tolist()
        low, high = [], []
        for bench, height in zip(frame.index, heights, strict=True):
            row = stats.loc[(bench, column)]
            has = row["ci_low"] == row["ci_low"]  # NaN: no interval known
            low.append(height - row["ci_low"] if has else 0.0)
            high.append(row["ci_high"] - height if has else 0.0)
        ax.bar(
            xs,
            heights,
            width=width,
            label=str(column),
            yerr=[low, high],
            capsize=3,
            error_kw={"elinewidth": 1},
        )
    for x, bench in enumerate(frame.index):
        if thresholds and bench in thresholds:
            ax.hlines(thresholds[bench], x - 0.45, x + 0.45, colors="black", linestyles="dashed")
    ax.set_xticks(range(len(frame.index)), [str(b) for b in frame.index])
    metrics = list(dict.fromkeys(frame.stats["metric"].dropna()))
    name = metrics[0] if len(metrics) == 1 else f"score ({', '.join(metrics) or 'none'})"
    ax.set_ylabel(name)
    top = frame.stats["ci_high"].max()
    ax.set_ylim(0, max(1.0, float(top) if top == top else 0.0, float(frame.max().max() or 0)))
    ax.legend(
        title="checkpoint",
        fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        borderaxespad=0.0,
    )
    ax.set_title(f"{name} per checkpoint, {confidence:.0%} intervals")
    return ax
