"""The synchronous client: a thin driver of the sans-I/O core over ``httpx.Client``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import httpx

from ._core import DEFAULT, Config, Core, Gen, Match, Pager, Send, Sleep
from ._models import (
    Benchmark,
    BenchmarkLike,
    Evaluation,
    EvaluationPage,
    PollEvent,
    Precheck,
    Sample,
    Status,
)

__all__ = ["Client"]


class Client:
    """Client of the ScaiMind evaluation API; host and key default to SCAIGRID_HOST / SCAIGRID_API_KEY.

    ``timeout`` is per HTTP attempt (default 5 s connect, 30 s read; ``None`` is refused because
    it would hang forever), ``call_deadline`` bounds one call with all its retries (120 s),
    ``max_retries`` (2) applies to GETs and to submits (re-sent under the same Idempotency-Key,
    after a duplicate lookup unless the coordinator is known to honour keys);
    ``wait_timeout`` (6 h) is ``wait``'s deadline when it is given ``timeout=None``.
    """

    def __init__(
        self,
        host: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT,
        max_retries: int = 2,
        transport: httpx.BaseTransport | None = None,
        poll_interval: float = 1.0,
        max_poll_interval: float = 20.0,
        wait_timeout: float = 6 * 3600.0,
        call_deadline: float = 120.0,
    ) -> None:
        self._core = Core(
            Config.resolve(
                host,
                api_key,
                timeout=timeout,
                max_retries=max_retries,
                call_deadline=call_deadline,
                poll_interval=poll_interval,
                max_poll_interval=max_poll_interval,
                wait_timeout=wait_timeout,
            )
        )
        self._http = httpx.Client(transport=transport, follow_redirects=False)
        self._sleep: Callable[[float], None] = time.sleep

    @property
    def host(self) -> str:
        """The coordinator's base URL, without a trailing slash."""
        return self._core.config.host

    def __repr__(self) -> str:
        return f"{type(self).__name__}(host={self.host!r}, api_key='***')"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _run(self, gen: Gen) -> Any:
        """Drive a core generator: perform each I/O operation it yields and feed the result back."""
        value: Any = None
        error: Exception | None = None
        while True:
            try:
                op = gen.throw(error) if error is not None else gen.send(value)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            try:
                if isinstance(op, Send):
                    value = self._http.request(
                        op.method,
                        op.url,
                        params=op.params,
                        json=op.json,
                        headers=op.headers,
                        timeout=op.timeout,
                    )
                elif isinstance(op, Sleep):
                    self._sleep(op.seconds)
                else:
                    op.callback(op.value)
            except Exception as exc:
                error = exc

    def submit(
        self,
        job_id: str,
        model_uri: str,
        benchmarks: Iterable[BenchmarkLike] | BenchmarkLike,
        checkpoint_id: str = "",
    ) -> Evaluation:
        """Start an evaluation; validated before sending, re-sent only under its Idempotency-Key."""
        return self._run(self._core.submit(job_id, model_uri, benchmarks, checkpoint_id))

    def get(self, evaluation_id: str) -> Evaluation:
        """The current record of one evaluation."""
        return self._run(self._core.get(evaluation_id))

    def list_evaluations(
        self, page_size: int = 20, page_token: str | None = None
    ) -> EvaluationPage:
        """One page of the listing, newest first."""
        return self._run(self._core.list_page(page_size, page_token))

    def iter_evaluations(
        self, page_size: int = 20, limit: int | None = None
    ) -> Iterator[Evaluation]:
        """Every evaluation across pages (up to ``limit``), fetching pages lazily."""
        pager = Pager(page_size, limit)
        while pager.more:
            page = self.list_evaluations(pager.page_size, pager.token)
            yield from pager.take(page.evaluations, page.next_page_token)

    def samples(
        self, evaluation_id: str, benchmark: str | None = None, *, page_size: int = 100
    ) -> Iterator[Sample]:
        """Every per-item record of an evaluation (of one benchmark if given), page by page.

        Each :class:`Sample` has a stable ``item_id`` (the same item has the same id in every
        evaluation of the same data), its outcome and what the coordinator stored. Raises
        SamplesNotAvailableError when the coordinator keeps no per-item records.
        """
        pager = Pager(page_size)
        while pager.more:
            page = self._run(
                self._core.samples_page(evaluation_id, benchmark, pager.page_size, pager.token)
            )
            yield from pager.take(page.samples, page.next_page_token)

    def wait(
        self,
        evaluation_id: str,
        *,
        timeout: float | None = None,
        poll_interval: float | None = None,
        on_update: Callable[[Evaluation], Any] | None = None,
        max_poll_interval: float | None = None,
        raise_on_failure: bool = False,
        on_poll: Callable[[PollEvent], Any] | None = None,
    ) -> Evaluation:
        """Poll until COMPLETED/FAILED/CANCELLED and return that terminal Evaluation.

        ``timeout=None`` means the client's ``wait_timeout`` (6 h), never forever; past the deadline
        ``WaitTimeoutError`` carries the last snapshot. With ``raise_on_failure=True`` a FAILED or
        CANCELLED end raises ``EvaluationFailedError``.
        """
        return self._run(
            self._core.wait(
                evaluation_id,
                timeout=timeout,
                poll_interval=poll_interval,
                max_poll_interval=max_poll_interval,
                on_update=on_update,
                raise_on_failure=raise_on_failure,
                on_poll=on_poll,
            )
        )

    def cancel(self, evaluation_id: str) -> Evaluation:
        """Ask the coordinator to cancel an evaluation; returns its record afterwards."""
        return self._run(self._core.cancel(evaluation_id))

    def get_job(self, job_id: str) -> dict[str, Any]:
        """The training job record ``{job_id, model_uri, status}``."""
        return self._run(self._core.get_job(job_id))

    def list_benchmarks(self) -> list[str]:
        """Names of the benchmarks the coordinator supports."""
        return self._run(self._core.list_benchmarks())

    def precheck(
        self, model_uri: str | None, benchmarks: Iterable[BenchmarkLike] | BenchmarkLike
    ) -> Precheck:
        """What submitting ``benchmarks`` for ``model_uri`` would score, without queuing anything.

        Per spec the data's digest and record count or its first problem (``.benchmarks``), and
        the model's digest or problem. Raises PrecheckNotAvailableError against a coordinator
        without the precheck route; ``model_uri=None`` checks the specs only.
        """
        return self._run(self._core.precheck(model_uri, benchmarks))

    def find_for_each(
        self,
        job_id: str,
        model_uri: str,
        benchmarks: Iterable[BenchmarkLike] | BenchmarkLike,
        checkpoint_id: str = "",
        *,
        since: datetime | float | None = None,
        statuses: Iterable[Status | str] | None = None,
        max_pages: int = 5,
        accept: Callable[[Evaluation, Benchmark], bool] | None = None,
    ) -> dict[Benchmark, Evaluation]:
        """For each benchmark, the newest evaluation of the same job, model and checkpoint that
        holds it (one newest-first listing scan, as :meth:`find_evaluation` makes).

        ``accept(evaluation, benchmark)`` can refuse a candidate (e.g. on its content digests);
        benchmarks nothing was found for are left out of the answer.
        """
        match = Match.build(
            job_id, model_uri, benchmarks, checkpoint_id, since=since, statuses=statuses
        )
        return self._run(self._core.find_for_each(match, accept, max_pages=max_pages))

    def find_evaluation(
        self,
        job_id: str,
        model_uri: str,
        benchmarks: Iterable[BenchmarkLike] | BenchmarkLike,
        checkpoint_id: str = "",
        *,
        since: datetime | float | None = None,
        statuses: Iterable[Status | str] | None = None,
        max_pages: int = 5,
    ) -> Evaluation | None:
        """Newest evaluation with the same job, model, checkpoint and benchmark keys, or None.

        Scans at most ``max_pages`` listing pages newest first, stopping at items created before
        ``since`` (a datetime, or seconds back from now), keeps only ``statuses`` if given, and
        GETs candidates whose listing item lacks the details to compare.
        """
        match = Match.build(
            job_id, model_uri, benchmarks, checkpoint_id, since=since, statuses=statuses
        )
        return self._run(self._core.find(match, max_pages=max_pages))
