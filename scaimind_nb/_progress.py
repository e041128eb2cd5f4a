"""Watching evaluations: one poller thread, a row per evaluation, one live display per cell.

Each watched evaluation is a `Watch`: its display row, a future that resolves with the terminal
Evaluation, and the client's `wait_steps` (the same polling rules as `Client.wait`: transient
errors, backoff, deadline). One daemon thread (never an asyncio task on the kernel loop) drives
the steps of every watch and sleeps until the next one is due; a Cancel click wakes it so the
next poll happens at once.

A `Board` shows the rows of one cell as one display. Rendering from the poller thread runs in a
copy of the originating cell's context, so ipykernel routes the output to that cell; a blocking
`wait()` in a later cell adopts the board so headless runs (nbclient) record its final state.
When every row of a board has ended, the live widget is replaced by the static HTML and text of
the final state, so a saved notebook reopened without a kernel shows results, not widget errors.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import html
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._display import (
    BAD,
    RowState,
    bars,
    render_html,
    render_line,
    render_row_html,
    render_text,
)

if TYPE_CHECKING:
    from ._client import Client
    from ._core import Steps
    from ._models import Evaluation

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

    def next_at(self) -> float:
        """When the next action may pass (monotonic seconds)."""
        return self._last + self.interval


# ----------------------------------------------------------------------------- watches


class Watch:
    """One evaluation being watched: its row, its future, and the client's wait steps.

    Only the poller thread resumes the steps; `cancel` may be called from any thread.
    """

    def __init__(
        self,
        client: Client,
        evaluation: Evaluation,
        board: Board,
        *,
        poll_interval: float | None = None,
        max_poll_interval: float | None = None,
    ) -> None:
        self.client = client
        self.board = board
        self.row = RowState(evaluation)
        self.future: concurrent.futures.Future[Evaluation] = concurrent.futures.Future()
        self.due = 0.0
        self.steps: Steps | None = None
        if evaluation.is_terminal:
            self.future.set_result(evaluation)
        else:
            self.steps = client.wait_steps(
                evaluation.evaluation_id,
                poll_interval=poll_interval,
                max_poll_interval=max_poll_interval,
                on_update=self._observe,
            )

    @property
    def evaluation(self) -> Evaluation:
        return self.row.evaluation

    @property
    def done(self) -> bool:
        return self.future.done()

    def _observe(self, evaluation: Evaluation) -> None:
        with self.board.lock:
            self.row.observe(evaluation)
            if not self.row.note.startswith("interrupted"):
                self.row.note = ""

    def cancel(self) -> Evaluation:
        """Cancel on the coordinator, show the answer at once and poll again now."""
        if self.done:
            return self.evaluation
        evaluation = self.client.cancel(self.evaluation.evaluation_id)
        self._observe(evaluation)
        self.board.refresh(force=True)
        POLLER.poke(self)
        return evaluation

    def note(self, text: str) -> None:
        with self.board.lock:
            self.row.note = text
        self.board.refresh(force=True)

    def step(self) -> bool:
        """Poll once (poller thread); True when the wait has ended.

        `Steps.resume` keeps whatever the wait raised for `settle`, so this never raises.
        """
        assert self.steps is not None
        delay = self.steps.resume()
        if delay is not None:
            self.due = time.monotonic() + delay
            return False
        return True

    def settle(self) -> None:
        """Resolve the future from the finished steps (after the final render)."""
        assert self.steps is not None
        try:
            evaluation = self.steps.result()
        except Exception as exc:
            self.note(f"polling stopped: {exc}")
            self.future.set_exception(exc)
        else:
            self.future.set_result(evaluation)


class Poller:
    """One daemon thread that resumes every watch's steps when due and renders their boards."""

    def __init__(self) -> None:
        self._watches: list[Watch] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def add(self, watch: Watch) -> None:
        with self._cond:
            self._watches.append(watch)
            self._start()
            self._cond.notify()

    def poke(self, watch: Watch) -> None:
        """Poll `watch` now instead of at its next due time."""
        with self._cond:
            watch.due = 0.0
            self._cond.notify()

    def resume(self) -> None:
        """Poll again after `stop` (a wait() on a run whose extension was unloaded)."""
        with self._cond:
            if any(not w.done for w in self._watches):
                self._start()
                self._cond.notify()

    def stop(self) -> threading.Thread | None:
        """Stop the thread between polls (on %unload_ext); watches keep their state."""
        with self._cond:
            thread = self._thread
            self._stopping = True
            self._cond.notify()
        return thread

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def _start(self) -> None:
        self._stopping = False
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="scaimind-poller", daemon=True)
            self._thread.start()

    def _due(self) -> list[Watch] | None:
        """The watches to poll now, waiting for the next one; None when the thread should end."""
        with self._cond:
            while True:
                self._watches = [w for w in self._watches if not w.done]
                if self._stopping or not self._watches:
                    self._thread = None
                    return None
                now = time.monotonic()
                due = [w for w in self._watches if w.due <= now]
                if due:
                    return due
                wake = min(w.due for w in self._watches)
                for board in {w.board for w in self._watches if w.board.dirty}:
                    wake = min(wake, board.next_render_at())
                if wake <= now:
                    return []
                self._cond.wait(wake - now)

    def _loop(self) -> None:
        while (due := self._due()) is not None:
            ended = [w for w in due if w.step()]
            boards = {w.board for w in due} | {
                w.board for w in list(self._watches) if w.board.dirty
            }
            for board in boards:
                board.refresh(force=any(w.board is board for w in ended))
            for watch in ended:
                watch.board.finish_if_done(ending=watch)
                watch.settle()


POLLER = Poller()


# ----------------------------------------------------------------------------- boards


class Board:
    """Rows of evaluations shown as one live display; re-rendered at most 4 times a second."""

    def __init__(self, mode: str, *, limit: int = 10) -> None:
        self.mode = mode
        self.limit = limit
        self.watches: list[Watch] = []
        self.lock = threading.RLock()
        self.dirty = False
        self.final = False
        self._throttle = Throttle(1.0 / MAX_UPDATES_PER_SECOND)
        self._context = contextvars.copy_context()
        self._cell = current_cell_key()
        self._final_cell: Any = None
        self.view = _make_view(mode, self)

    @property
    def rows(self) -> list[RowState]:
        return [w.row for w in self.watches]

    def add(self, watch: Watch) -> None:
        """Add a row and show it at once."""
        with self.lock:
            self.watches.append(watch)
            if all(w.done for w in self.watches):  # nothing to watch: the final state at once
                self.finish_if_done(ending=watch)
                return
            if self.view is not None:
                self.view.add(watch)
        self.refresh(force=True)

    def adopt_current_cell(self) -> None:
        """Route further output to the cell that is executing now (used by a blocking wait)."""
        self._context = contextvars.copy_context()
        self._cell = current_cell_key()

    def text(self) -> str:
        return render_text(self.rows, limit=self.limit)

    def html(self) -> str:
        return render_html(self.rows, limit=self.limit)

    def bundle(self) -> dict[str, str]:
        return {"text/plain": self.text(), "text/html": self.html()}

    def next_render_at(self) -> float:
        return self._throttle.next_at()

    def refresh(self, force: bool = False) -> None:
        """Re-render, at most MAX_UPDATES_PER_SECOND times a second unless `force`."""
        if self.view is None:
            return
        with self.lock:
            if not force and not self._throttle.ready():
                self.dirty = True
                return
            self.dirty = False
            self._in_context(self.view.render)

    def finish_if_done(self, *, ending: Watch) -> None:
        """When every row has ended: replace the live display by the final static state."""
        with self.lock:
            if self.final or any(w is not ending and not w.done for w in self.watches):
                return
            self.final = True
            self._final_cell = self._cell
            if self.view is not None:
                self._in_context(self.view.finish)

    def republish(self) -> None:
        """Send the final state again when it was sent while another cell executed.

        A later `wait()` on an ended run calls this: headless recorders (nbclient) only record
        what arrives while a cell executes, so the final state is sent once more from it.
        """
        with self.lock:
            if not self.final or self.view is None or self._final_cell == current_cell_key():
                return
            self.adopt_current_cell()
            self._final_cell = self._cell
            self._in_context(self.view.finish)

    def _in_context(self, action: Callable[[], None]) -> None:
        try:
            self._context.copy().run(action)
        except Exception:  # a broken frontend must never break the evaluation
            log.debug("scaimind_nb: progress display failed", exc_info=True)


_cell_board: tuple[Any, Board] | None = None


def board_for(mode: str, *, limit: int) -> Board:
    """The board of the executing cell for `mode`, so evaluations of one cell share a display."""
    global _cell_board
    key = _cell_key(mode)
    if key is not None and _cell_board is not None and _cell_board[0] == key:
        board = _cell_board[1]
        if not board.final:
            return board
    board = Board(mode, limit=limit)
    _cell_board = (key, board) if key is not None else None
    return board


def watch(
    client: Client,
    evaluation: Evaluation,
    *,
    mode: str,
    limit: int,
    poll_interval: float | None = None,
    max_poll_interval: float | None = None,
) -> Watch:
    """Start watching `evaluation`: a row on the cell's board, polled by the poller thread."""
    board = board_for(mode, limit=limit)
    w = Watch(
        client,
        evaluation,
        board,
        poll_interval=poll_interval,
        max_poll_interval=max_poll_interval,
    )
    board.add(w)
    if not w.done:
        POLLER.add(w)
    return w


def current_cell_key() -> Any:
    """An id of the executing IPython cell, or None outside IPython."""
    from ._display import _ipython

    shell = _ipython()
    if shell is None:
        return None
    return (id(shell), shell.execution_count)


def is_cell_board(board: Board) -> bool:
    """True when `board` is the display of the executing cell."""
    return (
        _cell_board is not None
        and _cell_board[1] is board
        and _cell_board[0] == _cell_key(board.mode)
    )


def _cell_key(mode: str) -> Any:
    key = current_cell_key()
    return None if key is None else (*key, mode)


def stop_all() -> threading.Thread | None:
    """Stop polling (the extension's unload hook); returns the thread that is ending."""
    global _cell_board
    _cell_board = None
    return POLLER.stop()


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

    def add(self, watch: Watch) -> None:
        """Rows are rendered from the board; nothing to build."""

    def render(self) -> None:
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

    def finish(self) -> None:
        """Publish the final state (again: a later cell's recorder must see it too)."""
        self._last = None
        self.render()


class TextView:
    """Concise lines: on every status change, progress every few seconds, results at the end."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self._seen: dict[str, tuple[str, str]] = {}
        self._throttles: dict[str, Throttle] = {}

    def add(self, watch: Watch) -> None:
        """Lines are printed from the board's rows; nothing to build."""

    def render(self) -> None:
        for w in self.board.watches:
            ev = w.evaluation
            status = ev.status.value
            progress = " ".join(f"{b.benchmark}:{b.completed}" for b in bars(w.row))
            before = self._seen.get(ev.evaluation_id)
            throttle = self._throttles.setdefault(
                ev.evaluation_id, Throttle(TEXT_PROGRESS_INTERVAL)
            )
            same = before is not None and before[0] == status
            if same and (before[1] == progress or not throttle.ready()):  # type: ignore[index]
                continue
            self._seen[ev.evaluation_id] = (status, progress)
            print(f"[scaimind] {render_line(w.row)}", flush=True)
            if ev.is_terminal:
                _, _, table = render_text([w.row], limit=self.board.limit).partition("\n")
                if table.strip():
                    print(table.strip("\n"), flush=True)

    def finish(self) -> None:
        self.render()


class WidgetView:
    """An ipywidgets board: per evaluation the row's HTML (the same renderer as the static view)
    beside a Cancel button; replaced by the static HTML once every row has ended."""

    def __init__(self, board: Board) -> None:
        import ipywidgets

        self.board = board
        self.rows: dict[str, RowWidgets] = {}
        self.box = _board_box_class()(board, layout=ipywidgets.Layout(width="100%"))
        self.box.add_class("scaimind-board")
        self.handle: Any = None

    def add(self, watch: Watch) -> None:
        row = RowWidgets(watch)
        self.rows[watch.evaluation.evaluation_id] = row
        self.box.children = (*self.box.children, row.box)

    def render(self) -> None:
        from IPython.display import display

        if self.board.final:
            return
        for w in self.board.watches:
            self.rows[w.evaluation.evaluation_id].update(self.board.limit)
        if self.handle is None:
            self.handle = display(self.box, display_id=True) or False

    def finish(self) -> None:
        """Replace the widget output by the final text and HTML, then close the widgets."""
        if self.handle is None:
            from IPython.display import display

            self.handle = display(self.board.bundle(), raw=True, display_id=True) or False
        elif self.handle:
            self.handle.update(self.board.bundle(), raw=True)
        for row in self.rows.values():
            row.close()
        self.box.close()


def _board_box_class() -> type:
    """A VBox whose text/plain and HTML fallbacks are the board, never `VBox(children=...)`."""
    global _BOARD_BOX
    if _BOARD_BOX is None:
        import ipywidgets

        class ScaimindBoard(ipywidgets.VBox):
            def __init__(self, board: Board, **kwargs: Any) -> None:
                super().__init__(**kwargs)
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
    """One evaluation row: its HTML (flexible) and a Cancel button that never shrinks."""

    def __init__(self, watch: Watch) -> None:
        import ipywidgets as w

        self.watch = watch
        self.html = w.HTML(layout=w.Layout(flex="1 1 auto", min_width="0", width="auto"))
        self.cancel = w.Button(
            description="Cancel",
            icon="stop",
            tooltip="Cancel this evaluation on the coordinator",
            layout=w.Layout(flex="0 0 auto", width="auto", margin="4px 0 0 8px"),
        )
        self.cancel.add_class("scaimind-cancel")
        self.cancel.on_click(self._on_cancel)
        self.error = ""
        self.box = w.HBox(
            [self.html, self.cancel],
            layout=w.Layout(width="100%", align_items="flex-start"),
        )
        self.box.add_class("scaimind-row-widget")

    def _on_cancel(self, _button: Any) -> None:
        self.cancel.disabled = True
        try:
            self.watch.cancel()
        except Exception as exc:  # shown in the row; the evaluation keeps running
            self.cancel.disabled = False
            self.error = f"cancel failed: {exc}"
            self.update(self.watch.board.limit)

    def update(self, limit: int) -> None:
        ended = self.watch.evaluation.is_terminal
        value = render_row_html(self.watch.row, limit=limit)
        if self.error:
            value += (
                f'<div class="scaimind-reason" style="color:{BAD.css}">'
                f"{html.escape(self.error)}</div>"
            )
        if value != self.html.value:
            self.html.value = value
        self.cancel.disabled = ended or self.cancel.disabled
        self.cancel.layout.visibility = "hidden" if ended else "visible"

    def close(self) -> None:
        self.cancel.close()
        self.html.close()
        self.box.close()
