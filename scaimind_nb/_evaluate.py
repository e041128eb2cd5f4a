"""`evaluate()` and `EvaluationRun`: the notebook entry point and the handle it returns."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._display import RowState, check_mode, detect_mode, is_terminal, render_html, render_text
from ._errors import (
    APIStatusError,
    EvaluationFailedError,
    ScaimindError,
    ScaimindValueError,
    WaitTimeoutError,
)

if TYPE_CHECKING:
    import pandas as pd

    from . import Client
    from ._models import Benchmark, Evaluation
    from ._progress import Board


@dataclass
class Settings:
    """Notebook-layer defaults; `%config ScaimindMagics.*` writes here."""

    host: str | None = None
    poll_interval: float = 1.0
    progress: str = "auto"
    display_limit: int = 10


settings = Settings()
_clients: dict[str | None, Client] = {}
_clients_lock = threading.Lock()


def default_client() -> Client:
    """A shared Client for the configured host (or `SCAIGRID_HOST`); the key comes from the env."""
    from . import Client

    host = settings.host or os.environ.get("SCAIGRID_HOST") or None
    with _clients_lock:
        client = _clients.get(host)
        if client is None:
            client = _clients[host] = Client(host=host)
        return client


def close_clients() -> None:
    """Close the shared clients (the extension's unload hook)."""
    with _clients_lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


def coerce_benchmarks(benchmarks: Any) -> list[Benchmark]:
    """Validate benchmarks before any request: a name, a dict, a Benchmark, or a list of them."""
    from ._models import Benchmark

    if isinstance(benchmarks, str | Mapping | Benchmark):
        benchmarks = [benchmarks]
    items = [Benchmark.coerce(b) for b in benchmarks]
    if not items:
        raise ScaimindValueError("benchmarks is empty: pass at least one, e.g. ['mmlu']")
    return items


def evaluate(
    job_id: str,
    model_uri: str,
    benchmarks: str | Benchmark | Mapping[str, Any] | Iterable[str | Benchmark | Mapping[str, Any]],
    checkpoint_id: str = "",
    wait: bool = True,
    progress: str = "auto",
    *,
    client: Client | None = None,
    timeout: float | None = None,
    poll_interval: float | None = None,
) -> EvaluationRun:
    """Submit one evaluation and show its live progress; blocks until it ends unless wait=False."""
    for name, value in (("job_id", job_id), ("model_uri", model_uri)):
        if not isinstance(value, str) or not value.strip():
            raise ScaimindValueError(f"{name} must be a non-empty string, got {value!r}")
    items = coerce_benchmarks(benchmarks)
    mode = check_mode(progress)
    client = client or default_client()
    submitted = client.submit(job_id, model_uri, items, checkpoint_id=checkpoint_id)
    run = EvaluationRun(client, submitted, progress=mode, poll_interval=poll_interval)
    if wait:
        run.wait(timeout=timeout)
    return run


class EvaluationRun:
    """A live handle on one evaluation: latest snapshot, blocking or awaitable wait, cancel."""

    def __init__(
        self,
        client: Client,
        evaluation: Evaluation,
        *,
        progress: str = "auto",
        poll_interval: float | None = None,
    ) -> None:
        from ._progress import board_for

        self._client = client
        self._row = RowState(evaluation)
        self._done = threading.Event()
        self._future: concurrent.futures.Future[Evaluation] = concurrent.futures.Future()
        self._error: BaseException | None = None
        requested = settings.progress if progress == "auto" else progress
        self.mode, self.mode_reason = detect_mode(requested)
        interval = settings.poll_interval if poll_interval is None else poll_interval
        if is_terminal(evaluation):
            self._resolve()
        self._board: Board = board_for(
            self.mode, poll_interval=interval, limit=settings.display_limit
        )
        self._board.add(self)

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
        client = client or default_client()
        return cls(
            client, client.get(evaluation_id), progress=progress, poll_interval=poll_interval
        )

    # ------------------------------------------------------------------ state

    @property
    def evaluation(self) -> Evaluation:
        """The latest snapshot fetched from the coordinator."""
        return self._row.evaluation

    @property
    def evaluation_id(self) -> str:
        return self._row.evaluation.evaluation_id

    @property
    def status(self) -> Any:
        return self._row.evaluation.status

    @property
    def done(self) -> bool:
        """True once the evaluation reached a terminal status (or polling gave up)."""
        return self._done.is_set()

    def __repr__(self) -> str:
        return f"<EvaluationRun {self.evaluation_id} {self.status}>"

    # ------------------------------------------------------------------ actions

    def wait(self, timeout: float | None = None, *, raise_on_failure: bool = False) -> Evaluation:
        """Block until the evaluation ends; Ctrl-C / the kernel's stop button cancels it remotely."""
        from ._display import _ipython

        if threading.current_thread() is threading.main_thread() and _ipython() is not None:
            self._board.adopt_current_cell()
        self._board.resume()
        start = time.monotonic()
        try:
            while not self._done.wait(0.1):
                if timeout is not None and time.monotonic() - start >= timeout:
                    raise WaitTimeoutError(
                        self.evaluation_id, self.evaluation, time.monotonic() - start
                    )
        except KeyboardInterrupt:
            self._row.note = "interrupted: cancelled on the coordinator"
            self.cancel()
            raise
        if self._error is not None:
            raise self._error
        evaluation = self.evaluation
        if raise_on_failure and evaluation.status.value != "COMPLETED":
            raise EvaluationFailedError(evaluation)
        return evaluation

    def __await__(self) -> Generator[Any, None, Evaluation]:
        """`await run` waits without blocking the kernel's event loop."""
        return asyncio.wrap_future(self._future).__await__()

    def cancel(self) -> Evaluation:
        """Cancel the evaluation on the coordinator and refresh the display."""
        if self.done:
            return self.evaluation
        evaluation = self._client.cancel(self.evaluation_id)
        self._board.poke()
        return evaluation

    def to_frame(self) -> pd.DataFrame:
        """The latest snapshot's results in the long format of `results_frame`."""
        from ._frames import results_frame

        return results_frame([self.evaluation])

    def table(
        self, thresholds: Mapping[str, float] | None = None, metric: str | None = None
    ) -> Any:
        """Scores per benchmark, styled pass/fail when `thresholds` ({benchmark: min}) are given."""
        from ._views import styled

        return styled([self.evaluation], thresholds, metric=metric)

    # ------------------------------------------------------------------ display

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        rows = [self._row]
        return {
            "text/plain": render_text(rows, limit=settings.display_limit),
            "text/html": render_html(rows, limit=settings.display_limit),
        }

    def _ipython_display_(self) -> None:
        """Show the static state unless this cell already shows the live board."""
        from IPython.display import display

        from ._progress import is_cell_board

        if self._board.view is not None and is_cell_board(self._board):
            return
        display(self._repr_mimebundle_(), raw=True)

    # ------------------------------------------------------------------ poller side

    def _poll(self) -> bool:
        """Fetch a fresh snapshot (poller thread); True when it just became terminal."""
        self._error = None
        try:
            evaluation = self._client.get(self.evaluation_id)
        except APIStatusError as exc:
            if exc.status_code in (408, 429) or exc.status_code >= 500:
                self._row.note = f"polling failed, retrying: {exc}"
                return False
            self._row.note = f"polling stopped: {exc}"
            self._error = exc
            return True
        except ScaimindError as exc:
            self._row.note = f"polling failed, retrying: {exc}"
            return False
        except Exception as exc:  # e.g. the client was closed: stop and report it to waiters
            self._row.note = f"polling stopped: {exc}"
            self._error = exc
            return True
        self._row.evaluation = evaluation
        self._row.note = "" if not self._row.note.startswith("interrupted") else self._row.note
        if is_terminal(evaluation):
            self._row.finished = time.monotonic()
            return True
        return False

    def _resolve(self) -> None:
        """Mark the run finished (after its final render) and wake every waiter."""
        if self._row.finished is None:
            self._row.finished = time.monotonic()
        self._done.set()
        if not self._future.done():
            if self._error is not None:
                self._future.set_exception(self._error)
            else:
                self._future.set_result(self.evaluation)
