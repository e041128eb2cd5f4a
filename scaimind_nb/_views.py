"""Notebook views of results: the comparison display, pass/fail styling, a display limit.

Colours come from JupyterLab's theme (see `_display.Tone`), so tables read in light and dark.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from ._display import BAD, MUTED, OK
from ._errors import ScaimindValueError

if TYPE_CHECKING:
    from pandas.io.formats.style import Styler

    from ._models import Evaluation

PASS_STYLE = f"background-color:color-mix(in srgb, {OK.css} 22%, transparent)"
FAIL_STYLE = f"background-color:color-mix(in srgb, {BAD.css} 22%, transparent)"
"""Tints of the theme's success and error colours: the cell text keeps the theme's colour."""
IMPROVED = "▲"
WORSE = "▼"


class ComparisonFrame(pd.DataFrame):
    """`compare`'s result: benchmarks x evaluations of scores, shown with n, intervals and Δ.

    The values are the scores; ``stats`` is the long table behind the display (see `compare`).
    Operations on it give plain DataFrames.
    """

    _metadata = ["stats"]
    stats: pd.DataFrame

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def __repr__(self) -> str:
        return comparison_text(self)

    def _repr_html_(self) -> str:
        return str(styled(self).to_html())


def _flag(value: Any) -> bool:
    """A nullable boolean of the stats table as a plain bool (missing is False)."""
    return False if pd.isna(value) else bool(value)


def _cell(row: Any) -> tuple[str, str]:
    """(text, html) of one comparison cell: score [interval] n, then Δ [interval] and method."""
    if math.isnan(row.score):
        return "—", "—"
    text = f"{row.score:.4f}"
    detail = ""
    if not pd.isna(row.ci_low):
        detail = f"[{row.ci_low:.3f}, {row.ci_high:.3f}]"
    if not pd.isna(row.n):
        detail += f" n={row.n}"
    delta_text = delta_html = ""
    if not pd.isna(row.delta):
        sign = ""
        if _flag(row.significant):
            sign = IMPROVED if row.delta > 0 else WORSE
        interval = (
            f" [{row.delta_low:+.3f}, {row.delta_high:+.3f}]" if not pd.isna(row.delta_low) else ""
        )
        how = "paired" if _flag(row.paired) else "unpaired"
        if pd.isna(row.delta_low):
            how = "no interval"
        delta_text = f"Δ {row.delta:+.4f}{interval} {how}{(' ' + sign) if sign else ''}"
        colour = (OK.css if row.delta > 0 else BAD.css) if sign else MUTED
        weight = "font-weight:600;" if sign else ""
        delta_html = (
            f'<br><small class="scaimind-delta" data-significant="{str(bool(sign)).lower()}" '
            f'style="{weight}color:{colour}" title="{html.escape(str(row.delta_method or ""))}">'
            f"{html.escape(delta_text)}</small>"
        )
    plain = f"{text} {detail.strip()} {delta_text}".strip()
    rich = (
        f'<span class="scaimind-score" style="font-variant-numeric:tabular-nums">{text}</span>'
        f' <small style="color:{MUTED}">{html.escape(detail.strip())}</small>{delta_html}'
    )
    return plain, rich


def _cells(frame: ComparisonFrame, kind: int) -> pd.DataFrame:
    """The display cells (0: text, 1: HTML) in the frame's layout."""
    out = pd.DataFrame("", index=frame.index, columns=frame.columns, dtype=object)
    for row in frame.stats.itertuples(index=False):
        if row.benchmark in out.index and row.evaluation in out.columns:
            out.at[row.benchmark, row.evaluation] = _cell(row)[kind]
    return out


def _caption(frame: ComparisonFrame) -> str:
    metrics = [m for m in dict.fromkeys(frame.stats["metric"].dropna())]
    confidence = frame.attrs.get("confidence", 0.95)
    what = ", ".join(metrics) if metrics else "score"
    text = f"{what}: score [{confidence:.0%} CI] n"
    if len(frame.columns) > 1:
        text += (
            f"; Δ to {frame.attrs.get('baseline')} (paired on per-item outcomes where both have "
            f"them); {IMPROVED}/{WORSE}: the interval of Δ excludes 0"
        )
    return text


def comparison_text(frame: ComparisonFrame) -> str:
    """The comparison as text/plain: the caption, then one line per benchmark and evaluation."""
    cells = _cells(frame, 0)
    lines = [_caption(frame)]
    width = max([len(str(b)) for b in cells.index] + [9])
    for bench in cells.index:
        for column in cells.columns:
            cell = str(cells.at[bench, column])
            lines.append(f"{bench!s:<{width}}  {column!s:<12}  {cell}")
    return "\n".join(lines)


def _frame(data: Iterable[Evaluation] | pd.DataFrame, metric: str | None) -> pd.DataFrame:
    """A benchmarks x evaluations frame: `data` itself, or `compare` of the evaluations."""
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
    data: Iterable[Any] | pd.DataFrame,
    thresholds: Mapping[str, float] | None = None,
    *,
    metric: str | None = None,
) -> Styler:
    """A comparison as a Styler: each score with its interval and n, Δ to the baseline with its
    interval (bold and marked ▲/▼ where that interval excludes zero), and cells tinted pass/fail
    against per-benchmark minimum scores (`thresholds`). A plain frame of scores is styled too.
    """
    frame = _frame(data, metric)
    if thresholds:
        _check_thresholds(frame, thresholds)
    if isinstance(frame, ComparisonFrame):
        shown = _cells(frame, 1)
        styler = shown.style.format_index(escape="html", axis=0).format_index(escape="html", axis=1)
        caption = _caption(frame)
    else:
        styler = frame.style.format(precision=4, na_rep="—")
        caption = ""

    def colour(row: pd.Series) -> list[str]:
        limit = (thresholds or {}).get(str(row.name))
        if limit is None:
            return [""] * len(row)
        scores: list[float] = frame.to_numpy(dtype="float64")[
            frame.index.get_loc(row.name)
        ].tolist()
        return ["" if s != s else (PASS_STYLE if s >= limit else FAIL_STYLE) for s in scores]

    if thresholds:
        caption += (
            ("; " if caption else "")
            + "pass: "
            + ", ".join(f"{b} ≥ {v:g}" for b, v in thresholds.items())
        )
        tips = pd.DataFrame(
            [
                [f"min {thresholds[b]:g}" if b in thresholds else "" for _ in frame.columns]
                for b in frame.index
            ],
            index=frame.index,
            columns=frame.columns,
        )
        styler = styler.apply(colour, axis=1).set_tooltips(tips)
    if caption:
        styler = styler.set_caption(html.escape(caption))
    return styler.set_table_attributes('class="scaimind-compare"')


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
