"""Display-mode detection and the text/HTML renderings of evaluation progress.

Everything here is pure (no widgets, no threads, no pandas) so every frontend, the saved
notebook and the terminal share one rendering of the same state.
"""

from __future__ import annotations

import html
import importlib.metadata
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._models import Evaluation

MODES = ("auto", "widget", "html", "text", "off")
ENV_PROGRESS = "SCAIMIND_NB_PROGRESS"

_STATUS_COLOURS = {"COMPLETED": "#1b7f3b", "FAILED": "#c62828", "CANCELLED": "#c62828"}
_RUNNING_COLOUR = "#1565c0"


def check_mode(mode: str) -> str:
    """Return `mode` lower-cased, or raise a one-line ValueError naming the valid modes."""
    value = str(mode).strip().lower()
    if value not in MODES:
        raise ValueError(f"unknown progress mode {mode!r}: use one of {', '.join(MODES)}")
    return value


def detect_mode(requested: str = "auto") -> tuple[str, str]:
    """Pick the progress display for this process and say why (what `%scaimind doctor` prints)."""
    requested = check_mode(requested)
    if requested != "auto":
        return requested, f"progress={requested!r} was set explicitly"
    env = os.environ.get(ENV_PROGRESS, "").strip()
    if env and env.lower() != "auto":
        return check_mode(env), f"{ENV_PROGRESS}={env} is set"
    shell = _ipython()
    if shell is None:
        return "text", "not running inside IPython, so progress is printed as text lines"
    kind = type(shell).__name__
    if kind != "ZMQInteractiveShell" or getattr(shell, "kernel", None) is None:
        return "text", f"{kind} is a terminal shell without rich display, so text lines are printed"
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return "html", "ipywidgets is not installed (pip install ipywidgets for the live widget)"
    return "widget", (
        f"ipykernel ZMQ shell with ipywidgets {_version('ipywidgets')}; if you see raw text or "
        "'Error displaying widget' (Qt Console, a server without jupyterlab_widgets), use "
        "%config ScaimindMagics.progress = 'html'"
    )


def doctor_report(requested: str = "auto") -> str:
    """Explain the environment and the chosen display mode, with a fix for each problem."""
    mode, reason = detect_mode(requested)
    shell = _ipython()
    lines = [
        "scaimind_nb doctor",
        f"  display mode : {mode}",
        f"  why          : {reason}",
        f"  shell        : {type(shell).__name__ if shell is not None else 'none (plain Python)'}",
        f"  python       : {sys.version.split()[0]}",
    ]
    for dist in (
        "ipython",
        "ipykernel",
        "ipywidgets",
        "jupyterlab_widgets",
        "pandas",
        "matplotlib",
    ):
        lines.append(f"  {dist:<13}: {_version(dist)}")
    host = os.environ.get("SCAIGRID_HOST")
    lines.append(f"  SCAIGRID_HOST: {host or 'not set (set it or %config ScaimindMagics.host)'}")
    key_state = "set" if os.environ.get("SCAIGRID_API_KEY") else "not set"
    lines.append(f"  SCAIGRID_API_KEY: {key_state}")
    lines.append(
        "  change mode  : %config ScaimindMagics.progress = 'auto'|'widget'|'html'|'text'|'off'"
    )
    return "\n".join(lines)


def _ipython() -> Any:
    """The running IPython shell, without importing IPython when nothing loaded it."""
    if "IPython" not in sys.modules:
        return None
    from IPython import get_ipython

    return get_ipython()


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


# ----------------------------------------------------------------------------- state and rows


@dataclass
class RowState:
    """One evaluation's latest snapshot as the display sees it."""

    evaluation: Evaluation
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    note: str = ""

    @property
    def elapsed(self) -> float:
        """Seconds so far: the server's timestamps once finished, the local clock while running."""
        ev = self.evaluation
        start = ev.started_at or ev.created_at
        end = ev.completed_at or ev.updated_at
        if is_terminal(ev) and start is not None and end is not None:
            return max(0.0, (end - start).total_seconds())
        return (self.finished or time.monotonic()) - self.started


@dataclass(frozen=True)
class BarState:
    """A per-benchmark bar: `total` is None when the coordinator reports no progress."""

    benchmark: str
    completed: int
    total: int | None


def status_name(evaluation: Evaluation) -> str:
    status = evaluation.status
    return str(getattr(status, "value", status)).upper()


def is_terminal(evaluation: Evaluation) -> bool:
    return bool(getattr(evaluation.status, "is_terminal", False))


def bars(evaluation: Evaluation) -> list[BarState]:
    """Per-benchmark bars from the coordinator's progress, falling back to the benchmark list."""
    seen: dict[str, BarState] = {}
    for item in getattr(evaluation, "progress", ()) or ():
        total = int(item.total) if item.total else None
        seen[item.benchmark] = BarState(item.benchmark, int(item.completed or 0), total)
    for bench in getattr(evaluation, "benchmarks", ()) or ():
        name = getattr(bench, "name", bench)
        seen.setdefault(str(name), BarState(str(name), 0, None))
    for result in result_list(evaluation):
        seen.setdefault(result.benchmark, BarState(result.benchmark, 0, None))
    return list(seen.values())


def result_list(evaluation: Evaluation) -> list[Any]:
    results = evaluation.results or ()
    if isinstance(results, Mapping):
        return list(results.values())
    return list(results)


def result_rows(evaluation: Evaluation) -> list[tuple[str, str, float, float | None]]:
    """(benchmark, metric, value, stderr) for every metric reported, primary metric first."""
    rows = []
    for result in result_list(evaluation):
        try:
            primary = result.primary_metric
        except Exception:
            primary = None
        for name in sorted(result.metrics, key=lambda m: m != primary):
            rows.append(
                (result.benchmark, name, float(result.metrics[name]), result.stderr_of(name))
            )
    return rows


def format_elapsed(seconds: float) -> str:
    seconds = max(0, int(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _fraction(bar: BarState) -> str:
    return f"{bar.completed}/{bar.total}" if bar.total else "…"


def _reason(row: RowState) -> str:
    error = row.evaluation.error
    if error:
        return str(error)
    return row.note


# ----------------------------------------------------------------------------- text


def render_line(row: RowState) -> str:
    """One concise line: id, status, elapsed, per-benchmark progress or scores, and the reason."""
    ev = row.evaluation
    status = status_name(ev)
    parts = [ev.evaluation_id, status, format_elapsed(row.elapsed)]
    if status == "COMPLETED":
        scores = [f"{b}={_score(ev, b)}" for b in (bar.benchmark for bar in bars(ev))]
        parts.append(" ".join(scores))
    else:
        parts.append(" ".join(f"{bar.benchmark} {_fraction(bar)}" for bar in bars(ev)))
    reason = _reason(row)
    if reason and status in ("FAILED", "CANCELLED"):
        parts.append(f"reason: {reason}")
    elif reason:
        parts.append(f"({reason})")
    return "  ".join(p for p in parts if p)


def _score(evaluation: Evaluation, benchmark: str) -> str:
    try:
        return f"{float(evaluation.score(benchmark)):.4f}"
    except Exception:
        return "n/a"


def render_text(rows: Sequence[RowState], *, limit: int = 10) -> str:
    """The board as text/plain: one line per evaluation, then the results of finished ones."""
    lines = [render_line(row) for row in rows]
    for row in rows:
        table = result_rows(row.evaluation)
        if not table:
            continue
        lines.append("")
        lines.append(f"{row.evaluation.evaluation_id} results:")
        lines.append(f"  {'benchmark':<20} {'metric':<16} {'value':>8} {'stderr':>8}")
        for bench, metric, value, stderr in _limit(table, limit):
            err = f"{stderr:.4f}" if stderr is not None else ""
            lines.append(f"  {bench:<20} {metric:<16} {value:>8.4f} {err:>8}")
        if limit and len(table) > limit:
            lines.append(f"  … truncated to display_limit={limit} of {len(table)} rows")
    return "\n".join(lines)


def _limit(items: list[Any], limit: int) -> list[Any]:
    return items[:limit] if limit and limit > 0 else items


# ----------------------------------------------------------------------------- HTML


def status_colour(status: str) -> str:
    return _STATUS_COLOURS.get(status, _RUNNING_COLOUR)


def render_bar_html(bar: BarState, status: str) -> str:
    """A per-benchmark `<progress>` (indeterminate without a total), coloured by status."""
    colour = status_colour(status)
    if status == "COMPLETED":
        value = f' value="{bar.total or 1}" max="{bar.total or 1}"'
    elif bar.total:
        value = f' value="{bar.completed}" max="{bar.total}"'
    else:
        value = ""
    return (
        f'<div class="scaimind-bar"><span style="display:inline-block;min-width:9em">'
        f"{html.escape(bar.benchmark)}</span>"
        f'<progress{value} style="width:16em;accent-color:{colour}"></progress> '
        f"<span>{html.escape(_fraction(bar))}</span></div>"
    )


def render_row_html(row: RowState, *, limit: int = 10) -> str:
    ev = row.evaluation
    status = status_name(ev)
    colour = status_colour(status)
    reason = _reason(row)
    head = (
        f'<div class="scaimind-row" data-status="{status}" '
        f'style="border-left:4px solid {colour};padding:2px 8px;margin:4px 0">'
        f"<b>{html.escape(ev.evaluation_id)}</b> "
        f'<span class="scaimind-status" style="color:{colour};font-weight:bold">{status}</span> '
        f"<span>{format_elapsed(row.elapsed)}</span>"
    )
    if ev.model_uri:
        head += f' <span style="color:#666">{html.escape(ev.model_uri)}'
        if ev.checkpoint_id:
            head += f" @ {html.escape(ev.checkpoint_id)}"
        head += "</span>"
    body = "".join(render_bar_html(bar, status) for bar in bars(ev))
    if reason:
        label = "reason" if status in ("FAILED", "CANCELLED") else "note"
        body += f'<div style="color:{colour}">{label}: {html.escape(reason)}</div>'
    body += render_results_html(ev, limit=limit)
    return head + body + "</div>"


def render_results_html(evaluation: Evaluation, *, limit: int = 10) -> str:
    table = result_rows(evaluation)
    if not table:
        return ""
    cells = "".join(
        f"<tr><td>{html.escape(b)}</td><td>{html.escape(m)}</td><td>{v:.4f}</td>"
        f"<td>{'' if s is None else f'{s:.4f}'}</td></tr>"
        for b, m, v, s in _limit(table, limit)
    )
    note = ""
    if limit and len(table) > limit:
        note = f"<caption>truncated to display_limit={limit} of {len(table)} rows</caption>"
    return (
        '<table class="scaimind-results">' + note + "<thead><tr><th>benchmark</th><th>metric</th>"
        "<th>value</th><th>stderr</th></tr></thead><tbody>" + cells + "</tbody></table>"
    )


def render_html(rows: Iterable[RowState], *, limit: int = 10) -> str:
    """The board as one HTML fragment (what nbviewer and GitHub show for the saved notebook)."""
    inner = "".join(render_row_html(row, limit=limit) for row in rows)
    return f'<div class="scaimind-board">{inner}</div>'
