"""Plain-text tables that fit a terminal width: abbreviate, then drop, then cut with an ellipsis.

A CI log is read at 80 columns as often as not. A table is fitted in steps, stopping at the
first that fits: the full cells; the columns' shorter renderings (a dataset's file name
instead of its URI); dropping the least useful columns; the shortest renderings (a tag
explained below the table); dropping more columns; finally cutting the flexible columns with a
middle ellipsis, which keeps both the start and the distinguishing end (`[param]`) of a long
name. `full=True` (pytest -v) skips all that.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ELLIPSIS = "…"
EARLY = 5
"""Columns whose `drop` is at least this go before the cells' shortest renderings are used."""
MIN_CUT = 8
"""A flexible column is never cut below this many characters."""
COMFORT = 24
"""Flexible columns are cut down to this many characters before more columns are dropped."""


@dataclass
class Column:
    """One column: its title, its cells, and how it may give way when the table is too wide."""

    title: str
    cells: list[str]
    right: bool = False
    """Right-align (numbers)."""
    drop: int = 0
    """0: always shown; otherwise dropped when too wide, the highest number first: EARLY and up
    before the shortest renderings are tried, below EARLY only after them."""
    flex: bool = False
    """May be cut with an ellipsis."""
    shorter: list[list[str]] = field(default_factory=list)
    """Shorter renderings of the cells, each shorter than the last."""
    short_title: str | None = None
    """The title from the second abbreviation level on."""

    def width(self, level: int) -> int:
        return max(len(c) for c in [self.heading(level), *self.at(level)])

    def heading(self, level: int) -> str:
        return self.short_title if level >= 2 and self.short_title else self.title

    def at(self, level: int) -> list[str]:
        """The cells at abbreviation level `level` (0 is the full text)."""
        if level == 0 or not self.shorter:
            return self.cells
        return self.shorter[min(level, len(self.shorter)) - 1]


@dataclass
class Table:
    """A rendered table: its lines (title row first), the columns shown and the level used."""

    lines: list[str]
    titles: list[str]
    level: int


def render(columns: list[Column], width: int, full: bool = False, sep: str = "  ") -> Table:
    """The table fitted into `width` columns, or everything in full when `full`."""
    columns = list(columns)
    if full:
        lines = _lines(columns, [0] * len(columns), [c.width(0) for c in columns], sep)
        return Table(lines, [c.title for c in columns], 0)
    levels = [0] * len(columns)

    def total(flex_cap: int | None = None) -> int:
        widths = [c.width(v) for c, v in zip(columns, levels, strict=True)]
        if flex_cap is not None:
            widths = [
                min(w, flex_cap) if c.flex else w for c, w in zip(columns, widths, strict=True)
            ]
        return sum(widths) + len(sep) * (len(columns) - 1)

    def drop(victims: list[Column], flex_cap: int | None = None) -> None:
        for victim in sorted(victims, key=lambda c: -c.drop):
            if total(flex_cap) <= width:
                return
            index = columns.index(victim)
            del columns[index], levels[index]

    if total() > width:
        levels = [1] * len(columns)
    drop([c for c in columns if c.drop >= EARLY])
    if total() > width:
        levels = [2] * len(columns)
    # late columns are worth more than the tail of a long name: cut names to COMFORT first
    drop([c for c in columns if 0 < c.drop < EARLY], flex_cap=COMFORT)
    widths = [c.width(v) for c, v in zip(columns, levels, strict=True)]
    excess = sum(widths) + len(sep) * (len(columns) - 1) - width
    while excess > 0:
        candidates = [i for i, c in enumerate(columns) if c.flex and widths[i] > MIN_CUT]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    lines = _lines(columns, levels, widths, sep)
    return Table(lines, [c.title for c in columns], max(levels, default=0))


def cut(text: str, width: int) -> str:
    """`text` in at most `width` characters, its middle replaced by an ellipsis when too long."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    head = (width - 1) // 2
    return text[:head] + ELLIPSIS + text[len(text) - (width - 1 - head) :]


def _lines(columns: list[Column], levels: list[int], widths: list[int], sep: str) -> list[str]:
    rows = [[c.heading(v) for c, v in zip(columns, levels, strict=True)]]
    cells = [c.at(v) for c, v in zip(columns, levels, strict=True)]
    rows += [list(row) for row in zip(*cells, strict=True)]
    out = []
    for row in rows:
        parts = []
        for column, text, w in zip(columns, row, widths, strict=True):
            text = cut(text, w)
            parts.append(text.rjust(w) if column.right else text.ljust(w))
        out.append(sep.join(parts).rstrip())
    return out


def wrap(parts: list[str], width: int, sep: str = ", ") -> list[str]:
    """Join `parts` into lines of at most `width` characters; a part is never split."""
    lines: list[str] = []
    for part in (p for p in parts if p):
        if lines and len(lines[-1]) + len(sep) + len(part) <= width:
            lines[-1] += sep + part
        else:
            lines.append(part)
    return lines
