"""Display-mode detection and the text/HTML renderings of evaluation progress.

Everything here is pure (no widgets, no threads, no pandas): the live widget, the HTML display,
the text lines, the saved notebook and the terminal share one rendering of the same state.
Every value put into HTML is escaped here.
"""

from __future__ import annotations

import enum
import html
import importlib.metadata
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._contract import Status

if TYPE_CHECKING:
    from ._models import BenchmarkProgress, BenchmarkResult, Evaluation

MODES = ("auto", "widget", "html", "text", "off")
ENV_PROGRESS = "SCAIMIND_NB_PROGRESS"


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
    from ._kernel import pump_support

    mode, reason = detect_mode(requested)
    shell = _ipython()
    lines = [
        "scaimind_nb doctor",
        f"  display mode : {mode}",
        f"  why          : {reason}",
        f"  cancel button: {pump_support(shell)}",
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


# ----------------------------------------------------------------------------- theme

ACCENT_SHARE = 70
"""Percent of a theme accent in a status colour; the rest is the theme's text colour."""


@dataclass(frozen=True)
class Tone:
    """A status colour: a JupyterLab theme accent mixed toward the theme's own text colour.

    70% accent and 30% text colour (black in light themes, white in dark ones) keeps at least
    4.5:1 contrast against the notebook background in JupyterLab's light and dark themes; outside
    JupyterLab the fallbacks (the light theme's values) apply.
    """

    variable: str
    fallback: str

    @property
    def css(self) -> str:
        return (
            f"color-mix(in srgb, var({self.variable}, {self.fallback}) {ACCENT_SHARE}%, "
            "var(--jp-ui-font-color0, #000))"
        )


OK = Tone("--jp-success-color1", "#388e3c")
BAD = Tone("--jp-error-color1", "#d32f2f")
HALT = Tone("--jp-warn-color1", "#f57c00")
RUN = Tone("--jp-brand-color1", "#1976d2")
MUTED = "var(--jp-ui-font-color2, #616161)"
TEXT = "var(--jp-ui-font-color1, #212121)"
TRACK = "var(--jp-layout-color2, #eeeeee)"
RULE = "var(--jp-border-color2, #e0e0e0)"
FONT = "font-family:var(--jp-ui-font-family, system-ui, sans-serif);font-size:var(--jp-ui-font-size1, 13px)"

STATUS_TONES = {Status.COMPLETED: OK, Status.FAILED: BAD, Status.CANCELLED: HALT}


def status_colour(status: Status) -> str:
    """The CSS colour of a status: green, red, orange when ended; blue while running; else muted."""
    tone = STATUS_TONES.get(status, RUN if status is Status.RUNNING else None)
    return tone.css if tone is not None else MUTED


# ----------------------------------------------------------------------------- state


class Phase(enum.StrEnum):
    """Where one benchmark of an evaluation stands."""

    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"


PHASE_COLOURS = {
    Phase.DONE: OK.css,
    Phase.RUNNING: RUN.css,
    Phase.FAILED: BAD.css,
    Phase.CANCELLED: HALT.css,
    Phase.WAITING: MUTED,
    Phase.SKIPPED: MUTED,
}


@dataclass
class Meter:
    """tqdm's figures for one benchmark: elapsed time, rate and ETA from observed progress.

    The first observation of the benchmark in progress starts its clock; the rate is the
    progress made since then over the time it took.
    """

    first_time: float
    first_done: int
    last_time: float
    last_done: int
    stopped: float | None = None

    def observe(self, now: float, done: int) -> None:
        if done != self.last_done:
            self.last_time, self.last_done = now, done

    def elapsed(self, now: float) -> float:
        return max(0.0, (self.stopped if self.stopped is not None else now) - self.first_time)

    @property
    def rate(self) -> float | None:
        """Samples per second since the first observation, None until progress was seen."""
        span = self.last_time - self.first_time
        gained = self.last_done - self.first_done
        return gained / span if gained > 0 and span > 0 else None

    def eta(self, total: int | None) -> float | None:
        rate = self.rate
        if rate is None or not total:
            return None
        return max(0.0, (total - self.last_done) / rate)


@dataclass
class RowState:
    """One evaluation's latest snapshot as the display sees it, with what polling observed.

    `observe` takes each new snapshot; `clock` (monotonic seconds) times the meters.
    """

    evaluation: Evaluation
    clock: Callable[[], float] = time.monotonic
    note: str = ""
    started: float = field(init=False)
    finished: float | None = None
    meters: dict[str, Meter] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()
        self._meter(self.evaluation)

    def observe(self, evaluation: Evaluation) -> None:
        """Take a new snapshot: advance the meters; stop the clocks once it is terminal."""
        self.evaluation = evaluation
        self._meter(evaluation)
        if evaluation.is_terminal and self.finished is None:
            self.finished = self.clock()

    def _meter(self, evaluation: Evaluation) -> None:
        now = self.clock()
        done = {r.benchmark for r in evaluation.results}
        for item in evaluation.progress:
            meter = self.meters.get(item.benchmark)
            if meter is None:
                if item.completed > 0 or evaluation.status is Status.RUNNING:
                    self.meters[item.benchmark] = Meter(now, item.completed, now, item.completed)
                continue
            meter.observe(now, item.completed)
            finished = item.benchmark in done or (item.total and item.completed >= item.total)
            if (finished or evaluation.is_terminal) and meter.stopped is None:
                meter.stopped = meter.last_time if finished else now

    @property
    def elapsed(self) -> float:
        """Seconds so far: the server's timestamps once finished, the local clock while running."""
        ev = self.evaluation
        start = ev.started_at or ev.created_at
        end = ev.completed_at or ev.updated_at
        if ev.is_terminal and start is not None and end is not None:
            return max(0.0, (end - start).total_seconds())
        return (self.finished or self.clock()) - self.started


@dataclass(frozen=True)
class BarState:
    """A per-benchmark bar: `total` is None when the coordinator reports no progress total."""

    benchmark: str
    completed: int
    total: int | None
    phase: Phase
    elapsed: float | None = None
    rate: float | None = None
    eta: float | None = None
    score: float | None = None
    """The final score once done, the live partial score where the coordinator reports one."""
    partial: bool = False

    @property
    def fraction(self) -> float | None:
        """Share done in [0, 1]; None when the total is unknown (an indeterminate bar)."""
        if self.phase is Phase.DONE:
            return 1.0
        if not self.total:
            return None
        return min(1.0, self.completed / self.total)


def _score_of(result: BenchmarkResult) -> float | None:
    try:
        return result.score
    except KeyError:  # a result without a primary metric has no score
        return None


def bars(row: RowState) -> list[BarState]:
    """The bars of a row, in benchmark order, with each benchmark's phase and meter.

    On FAILED or CANCELLED the benchmarks with results keep them (DONE); the one that was running
    (it made progress, or the error names it) is FAILED/CANCELLED; the rest were not run.
    """
    ev = row.evaluation
    now = row.clock()
    names = dict.fromkeys(
        [p.benchmark for p in ev.progress]
        + [b.name for b in ev.benchmarks]
        + [r.benchmark for r in ev.results]
    )
    progress = {p.benchmark: p for p in ev.progress}
    results = {r.benchmark: r for r in ev.results}
    error = ev.error or ""
    stopped = Phase.FAILED if ev.status is Status.FAILED else Phase.CANCELLED
    blamed = False
    current = False
    out = []
    for name in names:
        item: BenchmarkProgress | None = progress.get(name)
        completed = item.completed if item else 0
        total = item.total if item else None
        result: BenchmarkResult | None = results.get(name)
        if result is not None or ev.status is Status.COMPLETED:
            phase = Phase.DONE
            if result is not None and not total:
                total = result.num_samples
            completed = total or completed
        elif ev.status in (Status.FAILED, Status.CANCELLED):
            if not blamed and (completed > 0 or name in error):
                phase, blamed = stopped, True
            else:
                phase = Phase.SKIPPED
        elif ev.status is Status.RUNNING and (completed > 0 or not current):
            phase, current = Phase.RUNNING, True
        else:
            phase = Phase.WAITING
        meter = row.meters.get(name)
        score, partial = None, False
        if result is not None:
            score = _score_of(result)
        elif item is not None and item.score is not None:
            score, partial = item.score, True
        out.append(
            BarState(
                name,
                completed,
                total,
                phase,
                elapsed=meter.elapsed(now) if meter else None,
                rate=meter.rate if meter else None,
                eta=meter.eta(total) if meter and phase is Phase.RUNNING else None,
                score=score,
                partial=partial,
            )
        )
    return out


def result_rows(
    evaluation: Evaluation,
) -> list[tuple[str, str, float, float | None, int | None, bool]]:
    """(benchmark, metric, value, stderr, n, is_primary) for every metric, primary first."""
    rows = []
    for result in evaluation.results:
        try:
            primary: str | None = result.primary_metric
        except KeyError:
            primary = None
        for name in sorted(result.metrics, key=lambda m: m != primary):
            rows.append(
                (
                    result.benchmark,
                    name,
                    float(result.metrics[name]),
                    result.stderr_of(name),
                    result.num_samples,
                    name == primary,
                )
            )
    return rows


# ----------------------------------------------------------------------------- formatting


def format_elapsed(seconds: float) -> str:
    """`m:ss` or `h:mm:ss`, the evaluation's elapsed time in the row header."""
    seconds = max(0, int(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_interval(seconds: float) -> str:
    """tqdm's interval: whole seconds as `mm:ss`, or `h:mm:ss` from an hour on."""
    seconds = max(0, int(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def format_rate(rate: float | None) -> str:
    """tqdm's rate: `4.96it/s`, or `2.50s/it` below one item a second; `?it/s` when unknown."""
    if not rate:
        return "?it/s"
    return f"{rate:.2f}it/s" if rate >= 1 else f"{1 / rate:.2f}s/it"


def meter_text(bar: BarState) -> str:
    """The figures of one bar as tqdm prints them: `48% 19/40 [00:03<00:04, 4.96it/s]`."""
    if bar.phase is Phase.WAITING:
        return "queued"
    if bar.phase is Phase.SKIPPED:
        return "not run"
    count = f"{bar.completed}/{bar.total}" if bar.total else f"{bar.completed}/?"
    percent = f"{bar.fraction:.0%} " if bar.fraction is not None else ""
    timing = ""
    if bar.elapsed is not None and (bar.phase is Phase.RUNNING or bar.rate is not None):
        left = f"<{format_interval(bar.eta)}" if bar.eta is not None else ""
        if bar.phase is Phase.RUNNING and bar.eta is None:
            left = "<?"
        timing = f" [{format_interval(bar.elapsed)}{left}, {format_rate(bar.rate)}]"
    text = f"{percent}{count}{timing}"
    if bar.phase is Phase.FAILED:
        text = f"failed at {count}"
    elif bar.phase is Phase.CANCELLED:
        text = f"cancelled at {count}"
    if bar.score is not None:
        text += f"  score {bar.score:.4f}{' so far' if bar.partial else ''}"
    return text


def _reason(row: RowState) -> str:
    return str(row.evaluation.error or row.note or "")


def _title(ev: Evaluation) -> list[str]:
    """The parts that tell rows apart: checkpoint, id, model."""
    parts = [ev.checkpoint_id] if ev.checkpoint_id else []
    parts.append(ev.evaluation_id)
    if ev.model_uri:
        parts.append(ev.model_uri)
    return parts


# ----------------------------------------------------------------------------- text


def render_line(row: RowState) -> str:
    """One concise line: checkpoint, id, status, elapsed, per-benchmark progress, the reason."""
    ev = row.evaluation
    head = [ev.checkpoint_id] if ev.checkpoint_id else []
    head += [ev.evaluation_id, ev.status.value, format_elapsed(row.elapsed)]
    items = []
    for bar in bars(row):
        if bar.phase is Phase.DONE and bar.score is not None:
            items.append(f"{bar.benchmark}={bar.score:.4f}")
        else:
            items.append(f"{bar.benchmark} {meter_text(bar)}")
    parts = ["  ".join(head), "  ".join(items)]
    reason = _reason(row)
    if reason:
        ended = ev.status in (Status.FAILED, Status.CANCELLED)
        parts.append(f"reason: {reason}" if ended else f"({reason})")
    return "  ".join(p for p in parts if p)


def render_text(rows: Sequence[RowState], *, limit: int = 10) -> str:
    """The board as text/plain: one line per evaluation, then the results of each."""
    lines = [render_line(row) for row in rows]
    for row in rows:
        table = result_rows(row.evaluation)
        if not table:
            continue
        lines.append("")
        lines.append(f"{row.evaluation.evaluation_id} results:")
        lines.append(f"  {'benchmark':<20} {'metric':<16} {'value':>8} {'stderr':>8} {'n':>6}")
        for bench, metric, value, stderr, n, _ in _limit(table, limit):
            err = f"{stderr:.4f}" if stderr is not None else ""
            count = str(n) if n is not None else ""
            lines.append(f"  {bench:<20} {metric:<16} {value:>8.4f} {err:>8} {count:>6}")
        if limit and len(table) > limit:
            lines.append(f"  … truncated to display_limit={limit} of {len(table)} rows")
    return "\n".join(lines)


def _limit(items: list[Any], limit: int) -> list[Any]:
    return items[:limit] if limit and limit > 0 else items


# ----------------------------------------------------------------------------- HTML

BOARD_STYLE = (
    "<style>@keyframes scaimind-indeterminate{from{background-position:0 0}"
    "to{background-position:24px 0}}"
    ".scaimind-indeterminate{animation:scaimind-indeterminate 1s linear infinite}</style>"
)
"""The one style block of a board: the animation of indeterminate bars (inline styles do the rest)."""


def render_bar_html(bar: BarState) -> str:
    """One benchmark: its name on one line, a bar (striped when the total is unknown), tqdm figures."""
    colour = PHASE_COLOURS[bar.phase]
    fraction = bar.fraction
    if fraction is None and bar.phase is Phase.RUNNING:
        fill = (
            f'<span class="scaimind-indeterminate" style="display:block;height:100%;width:100%;'
            f"opacity:.55;background-image:repeating-linear-gradient(135deg,{colour} 0 6px,"
            f'transparent 6px 12px)"></span>'
        )
        aria = ""
    else:
        share = fraction or 0.0
        fill = (
            f'<span style="display:block;height:100%;width:{share * 100:.1f}%;'
            f'background:{colour}"></span>'
        )
        aria = f' aria-valuenow="{share * 100:.0f}" aria-valuemin="0" aria-valuemax="100"'
    name = html.escape(bar.benchmark)
    return (
        f'<div class="scaimind-bar" data-phase="{bar.phase.value}" style="display:flex;'
        'flex-wrap:wrap;align-items:center;gap:0 .6em;margin:2px 0">'
        f'<span class="scaimind-bench" title="{name}" style="flex:0 1 auto;max-width:100%;'
        f'white-space:nowrap;overflow:hidden;text-overflow:ellipsis">{name}</span>'
        f'<span class="scaimind-track" role="progressbar"{aria} style="flex:1 1 8em;'
        f"min-width:6em;max-width:22em;height:.75em;background:{TRACK};border-radius:3px;"
        f'overflow:hidden">{fill}</span>'
        '<span class="scaimind-meter" style="white-space:nowrap;'
        f'font-variant-numeric:tabular-nums;color:{colour}">'
        f"{html.escape(meter_text(bar))}</span></div>"
    )


def render_header_html(row: RowState) -> str:
    """The row header: checkpoint, status, elapsed time, id and model (the one header renderer)."""
    ev = row.evaluation
    colour = status_colour(ev.status)
    parts = []
    if ev.checkpoint_id:
        parts.append(f'<b class="scaimind-checkpoint">{html.escape(ev.checkpoint_id)}</b>')
    parts.append(
        f'<span class="scaimind-status" style="color:{colour};font-weight:600">'
        f"{html.escape(ev.status.value)}</span>"
    )
    parts.append(f'<span class="scaimind-elapsed">{format_elapsed(row.elapsed)}</span>')
    parts.append(
        f'<code class="scaimind-id" style="color:{MUTED};background:none">'
        f"{html.escape(ev.evaluation_id)}</code>"
    )
    if ev.model_uri:
        parts.append(
            f'<span class="scaimind-model" style="color:{MUTED};overflow-wrap:anywhere">'
            f"{html.escape(ev.model_uri)}</span>"
        )
    return (
        '<div class="scaimind-head" style="display:flex;flex-wrap:wrap;align-items:baseline;'
        f'gap:0 .6em">{"".join(parts)}</div>'
    )


def render_results_html(evaluation: Evaluation, *, limit: int = 10) -> str:
    """The results table (primary metric first and bold), styled from the theme."""
    table = result_rows(evaluation)
    if not table:
        return ""
    cell = f"padding:1px 8px;border-bottom:1px solid {RULE};text-align:"
    head = "".join(
        f'<th style="{cell}{align};font-weight:600">{label}</th>'
        for label, align in (
            ("benchmark", "left"),
            ("metric", "left"),
            ("value", "right"),
            ("stderr", "right"),
            ("n", "right"),
        )
    )
    body = []
    for bench, metric, value, stderr, n, primary in _limit(table, limit):
        weight = "font-weight:600;" if primary else ""
        body.append(
            f'<tr><td style="{cell}left">{html.escape(bench)}</td>'
            f'<td style="{cell}left;{weight}">{html.escape(metric)}</td>'
            f'<td style="{cell}right;{weight}">{value:.4f}</td>'
            f'<td style="{cell}right">{"" if stderr is None else f"{stderr:.4f}"}</td>'
            f'<td style="{cell}right">{"" if n is None else n}</td></tr>'
        )
    note = ""
    if limit and len(table) > limit:
        note = (
            f'<caption style="caption-side:bottom;color:{MUTED}">'
            f"truncated to display_limit={limit} of {len(table)} rows</caption>"
        )
    return (
        '<div class="scaimind-scroll" style="overflow-x:auto;max-width:100%">'
        '<table class="scaimind-results" style="border-collapse:collapse;margin:4px 0;'
        f'font-variant-numeric:tabular-nums;color:{TEXT}">{note}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def render_row_html(row: RowState, *, limit: int = 10) -> str:
    """One evaluation: header, a bar per benchmark, the reason, and its results so far."""
    ev = row.evaluation
    reason = _reason(row)
    body = "".join(render_bar_html(bar) for bar in bars(row))
    if reason:
        ended = ev.status in (Status.FAILED, Status.CANCELLED)
        label = "reason" if ended else "note"
        body += (
            f'<div class="scaimind-reason" style="color:{status_colour(ev.status)};'
            f'overflow-wrap:anywhere">{label}: {html.escape(reason)}</div>'
        )
    body += render_results_html(ev, limit=limit)
    return (
        f'<div class="scaimind-row" data-status="{html.escape(ev.status.value)}" '
        f'style="border-left:4px solid {status_colour(ev.status)};padding:2px 8px;'
        f'margin:4px 0;color:{TEXT};min-width:0">{render_header_html(row)}{body}</div>'
    )


def render_html(rows: Iterable[RowState], *, limit: int = 10) -> str:
    """The board as one HTML fragment (what nbviewer and GitHub show for the saved notebook)."""
    inner = "".join(render_row_html(row, limit=limit) for row in rows)
    return f'<div class="scaimind-board" style="{FONT}">{BOARD_STYLE}{inner}</div>'
