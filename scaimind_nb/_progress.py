"""The live progress board: one display per cell, rows per evaluation, a background poller.

Polling runs in a daemon thread (never an asyncio task on the kernel loop). Rendering from that
thread happens inside a copy of the originating cell's context, so ipykernel routes the output
to that cell; a blocking `wait()` in a later cell adopts the board into the waiting cell so
headless runs (nbclient) record its final state.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._display import (
    RowState,
    bars,
    format_elapsed,
    is_terminal,
    render_html,
    render_line,
    render_results_html,
    render_text,
    status_colour,
    status_name,
)

if TYPE_CHECKING:
    from ._evaluate import EvaluationRun

log = logging.getLogger("scaimind_nb")

MAX_UPDATES_PER_SECOND = 4.0
TEXT_PROGRESS_INTERVAL = 10.0


class Throttle:
    """Let an action through at most once per `interval` seconds."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last = float("-inf")

    def ready(self) -> bool:
        now = self._clock()
        if now - self._last >= self.interval:
            self._last = now
            return True
        return False


class Board:
    """Rows of evaluations shown as one live display, kept fresh by one poller thread."""

    def __init__(
        self,
        mode: str,
        *,
        poll_interval: float = 1.0,
        limit: int = 10,
    ) -> None:
        self.mode = mode
        self.poll_interval = poll_interval
        self.limit = limit
        self.runs: list[EvaluationRun] = []
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._throttle = Throttle(1.0 / MAX_UPDATES_PER_SECOND)
        self._dirty = False
        self._context = contextvars.copy_context()
        self.view = _make_view(mode, self)
        _BOARDS.add(self)

    @property
    def rows(self) -> list[RowState]:
        return [run._row for run in self.runs]

    def add(self, run: EvaluationRun) -> None:
        """Add a row, show it at once, and make sure the poller is running."""
        with self._lock:
            self.runs.append(run)
            if self.view is not None:
                self.view.add(run)
        self.refresh(force=True)
        if not run.done:
            self._ensure_poller()

    def poke(self) -> None:
        """Poll now instead of at the next interval (after a Cancel, say)."""
        self._wake.set()

    def adopt_current_cell(self) -> None:
        """Route further output to the cell that is executing now (used by a blocking wait)."""
        self._context = contextvars.copy_context()

    def stop(self) -> None:
        """Stop polling (on %unload_ext); rows keep their last state."""
        self._stop.set()
        self._wake.set()

    def text(self) -> str:
        return render_text(self.rows, limit=self.limit)

    def html(self) -> str:
        return render_html(self.rows, limit=self.limit)

    def bundle(self) -> dict[str, str]:
        return {"text/plain": self.text(), "text/html": self.html()}

    def refresh(self, force: bool = False) -> None:
        """Re-render, at most MAX_UPDATES_PER_SECOND times a second unless `force`."""
        if self.view is None:
            return
        with self._lock:
            if not force and not self._throttle.ready():
                self._dirty = True
                return
            self._dirty = False
            try:
                self._context.copy().run(self.view.render, force)
            except Exception:  # a broken frontend must never break the evaluation
                log.debug("scaimind_nb: progress display failed", exc_info=True)

    # ------------------------------------------------------------------ poller

    def resume(self) -> None:
        """Poll again after `stop` (a wait() on a run whose extension was unloaded)."""
        if any(not run.done for run in self.runs):
            self._ensure_poller()

    def _ensure_poller(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                self._wake.set()
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._poll_loop, name="scaimind-poller", daemon=True
            )
            self._thread.start()

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                pending = [run for run in self.runs if not run.done]
                if not pending:
                    self._thread = None
                    return
            finished = [run for run in pending if run._poll()]
            if self._stop.is_set():
                break  # stopped (unload) mid-poll: leave runs unresolved, wait() resumes them
            self.refresh(force=bool(finished) or self._dirty)
            for run in finished:
                run._resolve()
            self._wake.wait(self.poll_interval)
            self._wake.clear()
        with self._lock:
            self._thread = None


_BOARDS: weakref.WeakSet[Board] = weakref.WeakSet()
_cell_board: tuple[Any, Board] | None = None


def board_for(mode: str, *, poll_interval: float, limit: int) -> Board:
    """The board of the executing cell for `mode`, so evaluations of one cell share a display."""
    global _cell_board
    key = _cell_key(mode)
    if key is not None and _cell_board is not None and _cell_board[0] == key:
        return _cell_board[1]
    board = Board(mode, poll_interval=poll_interval, limit=limit)
    _cell_board = (key, board) if key is not None else None
    return board


def current_cell_key() -> Any:
    """An id of the executing IPython cell, or None outside IPython."""
    from ._display import _ipython

    shell = _ipython()
    if shell is None:
        return None
    return (id(shell), shell.execution_count)


def is_cell_board(board: Board) -> bool:
    """True when `board` is the live display of the executing cell."""
    return (
        _cell_board is not None
        and _cell_board[1] is board
        and _cell_board[0] == _cell_key(board.mode)
    )


def _cell_key(mode: str) -> Any:
    key = current_cell_key()
    return None if key is None else (*key, mode)


def stop_all() -> None:
    """Stop every poller (the extension's unload hook)."""
    global _cell_board
    for board in list(_BOARDS):
        board.stop()
    _cell_board = None


# ----------------------------------------------------------------------------- views


def _make_view(mode: str, board: Board) -> Any:
    if mode == "widget":
        try:
            return WidgetView(board)
        except ImportError:
            return HtmlView(board)
    if mode == "html":
        return HtmlView(board)
    if mode == "text":
        return TextView(board)
    return None


class HtmlView:
    """HTML + text/plain published once and rewritten in place through a display id."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.handle: Any = None
        self._last: dict[str, str] | None = None

    def add(self, run: EvaluationRun) -> None:
        """Rows are rendered from the board; nothing to build."""

    def render(self, force: bool) -> None:
        from IPython.display import display

        bundle = self.board.bundle()
        if bundle == self._last:
            return
        self._last = bundle
        if self.handle is None:
            # outside IPython display() prints once and returns None: no in-place updates then
            self.handle = display(bundle, raw=True, display_id=True) or False
        elif self.handle:
            self.handle.update(bundle, raw=True)


class TextView:
    """Concise lines: on every status change, progress every few seconds, results at the end."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self._seen: dict[str, tuple[str, str]] = {}
        self._progress_throttles: dict[str, Throttle] = {}

    def add(self, run: EvaluationRun) -> None:
        self._progress_throttles[run.evaluation_id] = Throttle(TEXT_PROGRESS_INTERVAL)

    def render(self, force: bool) -> None:
        for run in self.board.runs:
            row = run._row
            ev = row.evaluation
            status = status_name(ev)
            progress = " ".join(f"{b.completed}/{b.total}" for b in bars(ev))
            before = self._seen.get(ev.evaluation_id)
            throttle = self._progress_throttles[ev.evaluation_id]
            if (
                before is not None
                and before[0] == status
                and (before[1] == progress or not throttle.ready())
            ):
                continue
            self._seen[ev.evaluation_id] = (status, progress)
            print(f"[scaimind] {render_line(row)}", flush=True)
            if is_terminal(ev):
                _, _, table = render_text([row], limit=self.board.limit).partition("\n")
                if table.strip():
                    print(table.strip("\n"), flush=True)


class WidgetView:
    """An ipywidgets board: a row per evaluation with status, a bar per benchmark and Cancel."""

    def __init__(self, board: Board) -> None:
        import ipywidgets  # noqa: F401  (ImportError selects the HTML view)

        self.board = board
        self.rows: dict[str, RowWidgets] = {}
        self.box = _board_box_class()(board)
        self.box.add_class("scaimind-board")
        self.handle: Any = None

    def add(self, run: EvaluationRun) -> None:
        row = RowWidgets(run)
        self.rows[run.evaluation_id] = row
        self.box.children = (*self.box.children, row.box)

    def render(self, force: bool) -> None:
        from IPython.display import display

        for run in self.board.runs:
            self.rows[run.evaluation_id].update(run._row, self.board.limit)
        if self.handle is None:
            self.handle = display(self.box, display_id=True) or False
        elif (
            self.handle
            and force
            and all(run.done or is_terminal(run.evaluation) for run in self.board.runs)
        ):
            # resend every model's full state: updates sent while another cell was executing are
            # not recorded by headless runners, so the saved widget state must not depend on them
            for widget in _walk(self.box):
                widget.send_state()
            # re-publish so the saved text/plain and text/html show the final state
            self.handle.update(self.box)


def _walk(widget: Any) -> list[Any]:
    """A widget and all its descendants."""
    found = [widget]
    for child in getattr(widget, "children", ()):
        found.extend(_walk(child))
    return found


def _board_box_class() -> type:
    """A VBox whose text/plain and HTML fallbacks are the board, never `VBox(children=...)`."""
    global _BOARD_BOX
    if _BOARD_BOX is None:
        import ipywidgets

        class ScaimindBoard(ipywidgets.VBox):
            def __init__(self, board: Board) -> None:
                super().__init__()
                self._board = board

            def __repr__(self) -> str:
                return self._board.text()

            def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
                data = dict(super()._repr_mimebundle_(**kwargs) or {})
                data["text/plain"] = self._board.text()
                data["text/html"] = self._board.html()
                return data

        _BOARD_BOX = ScaimindBoard
    return _BOARD_BOX


_BOARD_BOX: type | None = None


class RowWidgets:
    """The widgets of one evaluation row; `update` maps a RowState onto their traits."""

    def __init__(self, run: EvaluationRun) -> None:
        import ipywidgets as w

        self.run = run
        self.header = w.HTML()
        self.cancel = w.Button(
            description="Cancel",
            icon="stop",
            button_style="warning",
            tooltip="Cancel this evaluation on the coordinator",
            layout=w.Layout(width="7em"),
        )
        self.cancel.on_click(self._on_cancel)
        self.bar_box = w.VBox()
        self.bars: dict[str, tuple[Any, Any, Any]] = {}
        self.results = w.HTML()
        self.box = w.VBox([w.HBox([self.header, self.cancel]), self.bar_box, self.results])
        self.box.add_class("scaimind-row")

    def _on_cancel(self, _button: Any) -> None:
        self.cancel.disabled = True
        try:
            self.run.cancel()
        except Exception as exc:
            self.cancel.disabled = False
            self.results.value = f'<span style="color:#c62828">cancel failed: {exc}</span>'

    def update(self, row: RowState, limit: int) -> None:
        import html

        import ipywidgets as w

        ev = row.evaluation
        status = status_name(ev)
        colour = status_colour(status)
        terminal = is_terminal(ev)
        reason = ev.error or row.note
        title = (
            f"<b>{html.escape(ev.evaluation_id)}</b> "
            f'<span style="color:{colour};font-weight:bold">{status}</span> '
            f"{format_elapsed(row.elapsed)}"
        )
        if ev.model_uri:
            title += f' <span style="color:#666">{html.escape(ev.model_uri)}</span>'
        if reason:
            title += f'<br><span style="color:{colour}">{html.escape(reason)}</span>'
        self.header.value = title
        self.cancel.disabled = terminal
        self.cancel.layout.visibility = "hidden" if terminal else "visible"
        for bar in bars(ev):
            if bar.benchmark not in self.bars:
                name = w.HTML(html.escape(bar.benchmark), layout=w.Layout(width="10em"))
                progress = w.FloatProgress(min=0.0, max=1.0, value=0.0, bar_style="info")
                count = w.HTML("")
                self.bars[bar.benchmark] = (name, progress, count)
                self.bar_box.children = (
                    *self.bar_box.children,
                    w.HBox([name, progress, count]),
                )
            _, progress, count = self.bars[bar.benchmark]
            if bar.total:
                progress.max = float(bar.total)
                progress.value = float(min(bar.completed, bar.total))
                count.value = f"{bar.completed}/{bar.total}"
            elif not terminal:
                progress.value = progress.max  # indeterminate: a full bar in the info style
                count.value = "…"
            if status == "COMPLETED":
                progress.value = progress.max
                progress.bar_style = "success"
            elif status in ("FAILED", "CANCELLED"):
                progress.bar_style = "danger"
            else:
                progress.bar_style = "" if bar.total else "info"
        if status == "COMPLETED":
            self.results.value = render_results_html(ev, limit=limit)
