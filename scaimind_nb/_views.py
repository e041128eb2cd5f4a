"""Notebook views of results: pass/fail styling and a display limit with a truncation note."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from ._errors import ScaimindValueError

if TYPE_CHECKING:
    from pandas.io.formats.style import Styler

    from ._models import Evaluation

PASS_STYLE = "background-color:#d4edda;color:#155724"
FAIL_STYLE = "background-color:#f8d7da;color:#721c24"


def _frame(data: Iterable[Evaluation] | pd.DataFrame, metric: str | None) -> pd.DataFrame:
    """A benchmarks x checkpoints frame: `data` itself, or `compare` of the evaluations."""
    from ._frames import compare

    return data if isinstance(data, pd.DataFrame) else compare(data, metric=metric)


def pass_fail(
    data: Iterable[Evaluation] | pd.DataFrame,
    thresholds: Mapping[str, float],
    *,
    metric: str | None = None,
) -> pd.DataFrame:
    """Long table of benchmark, column, score, threshold, passed: the plain-text twin of `styled`."""
    frame = _frame(data, metric)
    _check_thresholds(frame, thresholds)
    rows = [
        {
            "benchmark": bench,
            frame.columns.name or "column": column,
            "score": float(frame.at[bench, column]),  # type: ignore[arg-type]
            "threshold": float(thresholds[bench]),
            "passed": float(frame.at[bench, column]) >= thresholds[bench],  # type: ignore[arg-type]
        }
        for bench in frame.index
        if bench in thresholds
        for column in frame.columns
    ]
    return pd.DataFrame(rows)


def styled(
    data: Iterable[Evaluation] | pd.DataFrame,
    thresholds: Mapping[str, float] | None = None,
    *,
    metric: str | None = None,
) -> Styler:
    """`compare` as a Styler: 4 decimals, green/red cells against per-benchmark minimum scores."""
    frame = _frame(data, metric)
    styler = frame.style.format(precision=4, na_rep="—")
    if not thresholds:
        return styler
    _check_thresholds(frame, thresholds)

    def colour(row: pd.Series) -> list[str]:
        limit = thresholds.get(str(row.name))
        if limit is None:
            return [""] * len(row)
        return [PASS_STYLE if value >= limit else FAIL_STYLE for value in row]

    caption = "pass: " + ", ".join(f"{b} ≥ {v:g}" for b, v in thresholds.items())
    tips = pd.DataFrame(
        [
            [f"min {thresholds[b]:g}" if b in thresholds else "" for _ in frame.columns]
            for b in frame.index
        ],
        index=frame.index,
        columns=frame.columns,
    )
    return styler.apply(colour, axis=1).set_caption(html.escape(caption)).set_tooltips(tips)


def _check_thresholds(frame: pd.DataFrame, thresholds: Mapping[str, float]) -> None:
    unknown = [b for b in thresholds if b not in frame.index]
    if unknown:
        raise ScaimindValueError(
            f"thresholds name benchmarks without results: {', '.join(map(repr, unknown))}; "
            f"available: {', '.join(map(str, frame.index)) or 'none'}"
        )


class LimitedFrame(pd.DataFrame):
    """A DataFrame that displays at most `display_limit` rows with a note; data stays complete."""

    _metadata = ["display_limit"]
    display_limit: int

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def _note(self) -> str | None:
        limit = getattr(self, "display_limit", 0) or 0
        if limit <= 0 or len(self) <= limit:
            return None
        return (
            f"Showing {limit} of {len(self)} rows (display_limit={limit}); the variable holds "
            "all rows. Change it with %config ScaimindMagics.display_limit = N (0 = no limit)."
        )

    def _shown(self) -> Any:
        """The plain DataFrame that is displayed: the first `display_limit` rows."""
        return pd.DataFrame(self.head(self.display_limit) if self._note() else self)

    def __repr__(self) -> str:
        note = self._note()
        return repr(self._shown()) + (f"\n{note}" if note else "")

    def _repr_html_(self) -> str | None:
        note = self._note()
        inner = self._shown()._repr_html_() or ""
        return inner + (
            f'<p class="scaimind-truncated"><i>{html.escape(note)}</i></p>' if note else ""
        )


def limited(frame: pd.DataFrame, limit: int) -> pd.DataFrame:
    """Wrap `frame` so notebooks show at most `limit` rows and say so (0 means no limit)."""
    out = LimitedFrame(frame)
    out.display_limit = int(limit)
    out.attrs.update(frame.attrs)
    return out
