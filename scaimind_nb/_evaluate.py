"""`evaluate()` and `EvaluationRun`: the notebook entry point and the handle it returns."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._contract import Status
from ._display import check_mode, detect_mode, render_html, render_text
from ._errors import EvaluationFailedError, ScaimindError, WaitTimeoutError

if TYPE_CHECKING:
    import pandas as pd

    from ._client import Client
    from ._models import Benchmark, BenchmarkResult, Evaluation
    from ._progress import Watch


@dataclass
class Settings:
    """Notebook-layer defaults; `%config ScaimindMagics.*` writes here."""

    host: str | None = None
    poll_interval: float = 1.0
    max_poll_interval: float = 2.0
    progress: str = "auto"
    display_limit: int = 10


settings = Settings()
MAX_SHARED_CLIENTS = 8
_clients: OrderedDict[tuple[str | None, str], Client] = OrderedDict()
_clients_lock = threading.Lock()


def default_client() -> Client:
    """A shared Client for the configured host and key (`SCAIGRID_HOST` / `SCAIGRID_API_KEY`).

    Shared per host *and* key, so changing `SCAIGRID_API_KEY` in the kernel takes effect; at most
    MAX_SHARED_CLIENTS are kept (the least recently used is closed).
    """
    from ._client import Client

    host = settings.host or os.environ.get("SCAIGRID_HOST") or None
    key = os.environ.get("SCAIGRID_API_KEY") or ""
    slot = (host, hashlib.sha256(key.encode()).hexdigest())
    with _clients_lock:
        client = _clients.get(slot)
        if client is None:
            client = _clients[slot] = Client(host=host)
            while len(_clients) > MAX_SHARED_CLIENTS:
                _clients.popitem(last=False)[1].close()
        _clients.move_to_end(slot)
        return client


def close_clients() -> None:
    """Close the shared clients (the extension's unload hook)."""
    with _clients_lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


def check_timeout(timeout: float | None) -> float | None:
    """A wait's timeout in seconds (None: the client's wait_timeout), refused in one line if bad."""
    from ._core import _positive

    return None if timeout is None else _positive("timeout", timeout)


def evaluate(
    job_id: str,
    model_uri: str,
    benchmarks: str | Benchmark | Mapping[str, Any] | Iterable[str | Benchmark | Mapping[str, Any]],
    checkpoint_id: str = "",
    *,
    wait: bool = True,
    progress: str = "auto",
    client: Client | None = None,
    timeout: float | None = None,
    poll_interval: float | None = None,
) -> EvaluationRun:
    """Submit one evaluation and show its live progress; blocks until it ends unless wait=False.

    Arguments are validated before any request. While it blocks, the display's Cancel button and
    the kernel's stop button cancel the evaluation on the coordinator; after the stop button (or
    a `timeout`) the variable of ``run = evaluate(...)`` still receives the handle.
    """
    from ._core import _positive

    mode = check_mode(progress)
    timeout = check_timeout(timeout)
    if poll_interval is not None:
        poll_interval = _positive("poll_interval", poll_interval, allow_zero=True)
    client = client or default_client()
    submitted = client.submit(job_id, model_uri, benchmarks, checkpoint_id=checkpoint_id)
    run = EvaluationRun.watch(client, submitted, progress=mode, poll_interval=poll_interval)
    if wait:
        wait_bound(run, timeout)
    return run


def wait_bound(run: EvaluationRun, timeout: float | None, value: Any = None) -> Evaluation:
    """`run.wait(timeout)`; when interrupted or timed out, give `value` (default `run`) to the
    variable the cell was assigning (``run = evaluate(...)``) and name it on the exception
    (`bound_to`), so the handle is never lost."""
    from ._kernel import bind_to_caller

    try:
        return run.wait(timeout)
    except (KeyboardInterrupt, WaitTimeoutError) as exc:
        name = bind_to_caller(run if value is None else value)
        exc.bound_to = name  # type: ignore[union-attr]
        if name and isinstance(exc, WaitTimeoutError):
            exc.add_note(f"`{name}` holds the run: {name}.wait() waits again")
        raise


class EvaluationRun:
    """A live handle on one evaluation: latest snapshot, blocking or awaitable wait, cancel.

    A facade over a `Watch` (its display row and the future of its terminal Evaluation); the
    constructor does nothing else. `evaluate(...)`, `EvaluationRun.watch(...)` and
    `EvaluationRun.follow(...)` start watching.
    """

    def __init__(self, watch: Watch) -> None:
        self._watch = watch

    @classmethod
    def watch(
        cls,
        client: Client,
        evaluation: Evaluation,
        *,
        progress: str = "auto",
        poll_interval: float | None = None,
    ) -> EvaluationRun:
        """Watch a submitted evaluation: a row on this cell's display, polled in the background."""
        from ._progress import watch

        requested = settings.progress if check_mode(progress) == "auto" else progress
        mode, _ = detect_mode(requested)
        return cls(
            watch(
                client,
                evaluation,
                mode=mode,
                limit=settings.display_limit,
                poll_interval=settings.poll_interval if poll_interval is None else poll_interval,
                max_poll_interval=max(
                    settings.max_poll_interval,
                    settings.poll_interval if poll_interval is None else poll_interval,
                ),
            )
        )

    @classmethod
    def follow(
        cls,
        evaluation_id: str,
        *,
        client: Client | None = None,
        progress: str = "auto",
        poll_interval: float | None = None,
    ) -> EvaluationRun:
        """Attach a live display to an evaluation that was submitted earlier (or elsewhere)."""
        mode = check_mode(progress)
        client = client or default_client()
        return cls.watch(
            client, client.get(evaluation_id), progress=mode, poll_interval=poll_interval
        )

    # ------------------------------------------------------------------ state

    @property
    def evaluation(self) -> Evaluation:
        """The latest snapshot fetched from the coordinator."""
        return self._watch.evaluation

    @property
    def evaluation_id(self) -> str:
        return self._watch.evaluation.evaluation_id

    @property
    def status(self) -> Status:
        return self._watch.evaluation.status

    @property
    def client(self) -> Client:
        """The client this run polls with (samples and diffs use it too)."""
        return self._watch.client

    @property
    def done(self) -> bool:
        """True once the evaluation reached a terminal status (or polling gave up)."""
        return self._watch.done

    def score(self, benchmark: str, metric: str | None = None) -> float:
        """The latest snapshot's score of `benchmark`: `Evaluation.score`."""
        return self.evaluation.score(benchmark, metric)

    def result(self, benchmark: str) -> BenchmarkResult:
        """The latest snapshot's result of `benchmark`: `Evaluation.result`."""
        return self.evaluation.result(benchmark)

    def __repr__(self) -> str:
        return f"<EvaluationRun {self.evaluation_id} {self.status.value}>"

    # ------------------------------------------------------------------ actions

    def wait(self, timeout: float | None = None, *, raise_on_failure: bool = False) -> Evaluation:
        """Block until the evaluation ends and return it.

        `timeout=None` waits as long as `Client.wait` does (the client's `wait_timeout`, 6 h);
        past `timeout` a WaitTimeoutError carries the last snapshot and polling goes on. In a
        kernel the display's Cancel button works meanwhile; the stop button (Ctrl-C) cancels
        the evaluation on the coordinator and ends the cell with a one-line message.
        """
        from ._display import _ipython
        from ._kernel import Interrupted, wait_for
        from ._progress import POLLER

        timeout = check_timeout(timeout)
        watch = self._watch
        in_cell = threading.current_thread() is threading.main_thread() and _ipython() is not None
        if in_cell:
            watch.board.adopt_current_cell()
        POLLER.resume()
        start = time.monotonic()
        try:
            finished = wait_for(watch.future, timeout)
        except KeyboardInterrupt:
            raise Interrupted(self._cancel_after_interrupt()) from None
        if not finished:
            raise WaitTimeoutError(self.evaluation_id, self.evaluation, time.monotonic() - start)
        evaluation = watch.future.result()
        if in_cell:
            watch.board.republish()
        if raise_on_failure and evaluation.status is not Status.COMPLETED:
            raise EvaluationFailedError(evaluation)
        return evaluation

    def _cancel_after_interrupt(self) -> str:
        """Cancel on the coordinator after the stop button; the one-line message to show."""
        try:
            self._watch.cancel()
        except ScaimindError as exc:
            self._watch.note(f"interrupted; cancelling failed: {exc}")
            return f"evaluation {self.evaluation_id} was NOT cancelled: {exc}"
        self._watch.note("interrupted: cancelled on the coordinator")
        return f"evaluation {self.evaluation_id} is cancelled on the coordinator"

    def __await__(self) -> Generator[Any, None, Evaluation]:
        """`await run` waits without blocking the kernel's event loop."""
        return asyncio.wrap_future(self._watch.future).__await__()

    def cancel(self) -> Evaluation:
        """Cancel the evaluation on the coordinator and refresh the display."""
        return self._watch.cancel()

    def to_frame(self) -> pd.DataFrame:
        """The latest snapshot's results in the long format of `results_frame`."""
        from ._frames import results_frame

        return results_frame([self.evaluation])

    def table(
        self, thresholds: Mapping[str, float] | None = None, *, metric: str | None = None
    ) -> Any:
        """Scores per benchmark, styled pass/fail when `thresholds` ({benchmark: min}) are given."""
        from ._views import styled

        return styled([self.evaluation], thresholds, metric=metric)

    # ------------------------------------------------------------------ display

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        rows = [self._watch.row]
        return {
            "text/plain": render_text(rows, limit=settings.display_limit),
            "text/html": render_html(rows, limit=settings.display_limit),
        }

    def _ipython_display_(self) -> None:
        """Show the static state unless this cell already shows the run's display."""
        from IPython.display import display

        from ._progress import is_cell_board

        if self._watch.board.view is not None and is_cell_board(self._watch.board):
            return
        display(self._repr_mimebundle_(), raw=True)
