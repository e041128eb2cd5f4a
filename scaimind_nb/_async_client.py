"""The asynchronous client: the same sans-I/O core driven over ``httpx.AsyncClient``."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime
from typing import Any

import anyio
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

__all__ = ["AsyncClient"]


class AsyncClient:
    """Async twin of :class:`Client` with the same methods and defaults; use one per event loop."""

    def __init__(
        self,
        host: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT,
        max_retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
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
        self._http = httpx.AsyncClient(transport=transport, follow_redirects=False)
        self._sleep: Callable[[float], Any] = anyio.sleep

    @property
    def host(self) -> str:
        """The coordinator's base URL, without a trailing slash."""
        return self._core.config.host

    def __repr__(self) -> str:
        return f"{type(self).__name__}(host={self.host!r}, api_key='***')"

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _run(self, gen: Gen) -> Any:
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
                    value = await self._http.request(
                        op.method,
                        op.url,
                        params=op.params,
                        json=op.json,
                        headers=op.headers,
                        timeout=op.timeout,
                    )
                elif isinstance(op, Sleep):
                    await self._sleep(op.seconds)
                else:
                    result = op.callback(op.value)
                    if inspect.isawaitable(result):
                        await result
            except Exception as exc:
                error = exc

    async def submit(
        self,
        job_id: str,
        model_uri: str,
        benchmarks: Iterable[BenchmarkLike] | BenchmarkLike,
        checkpoint_id: str = "",
    ) -> Evaluation:
        """Start an evaluation; validated before sending, re-sent only under its Idempotency-Key."""
        return await self._run(self._core.submit(job_id, model_uri, benchmarks, checkpoint_id))

    async def get(self, evaluation_id: str) -> Evaluation:
        """The current record of one evaluation."""
        return await self._run(self._core.get(evaluation_id))

    async def list_evaluations(
        self, page_size: int = 20, page_token: str | None = None
    ) -> EvaluationPage:
        """One page of the listing, newest first."""
        return await self._run(self._core.list_page(page_size, page_token))

    async def iter_evaluations(
        self, page_size: int = 20, limit: int | None = None
    ) -> AsyncIterator[Evaluation]:
        """Every evaluation across pages (up to ``limit``), fetching pages lazily."""
        pager = Pager(page_size, limit)
        while pager.more:
            page = await self.list_evaluations(pager.page_size, pager.token)
            for ev in pager.take(page.evaluations, page.next_page_token):
                yield ev

    async def samples(
        self, evaluation_id: str, benchmark: str | None = None, *, page_size: int = 100
    ) -> AsyncIterator[Sample]:
        """Every per-item record of an evaluation (of one benchmark if given), page by page.

        Raises SamplesNotAvailableError when the coordinator keeps no per-item records.
        """
        pager = Pager(page_size)
        while pager.more:
            page = await self._run(
                self._core.samples_page(evaluation_id, benchmark, pager.page_size, pager.token)
            )
            for sample in pager.take(page.samples, page.next_page_token):
                yield sample

    async def wait(
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
        """Poll until terminal; same semantics as :meth:`Client.wait` (``on_update`` may be async)."""
        return await self._run(
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

    async def cancel(self, evaluation_id: str) -> Evaluation:
        """Ask the coordinator to cancel an evaluation; returns its record afterwards."""
        return await self._run(self._core.cancel(evaluation_id))

    async def get_job(self, job_id: str) -> dict[str, Any]:
        """The training job record ``{job_id, model_uri, status}``."""
        return await self._run(self._core.get_job(job_id))

    async def list_benchmarks(self) -> list[str]:
        """Names of the benchmarks the coordinator supports."""
        return await self._run(self._core.list_benchmarks())

    async def precheck(
        self, model_uri: str | None, benchmarks: Iterable[BenchmarkLike] | BenchmarkLike
    ) -> Precheck:
        """What submitting ``benchmarks`` for ``model_uri`` would score, without queuing anything.

        Per spec the data's digest and record count or its first problem (``.benchmarks``), and
        the model's digest or problem. Raises PrecheckNotAvailableError against a coordinator
        without the precheck route; ``model_uri=None`` checks the specs only.
        """
        return await self._run(self._core.precheck(model_uri, benchmarks))

    async def find_for_each(
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
        return await self._run(self._core.find_for_each(match, accept, max_pages=max_pages))

    async def find_evaluation(
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
        """The awaitable twin of :meth:`Client.find_evaluation`."""
        match = Match.build(
            job_id, model_uri, benchmarks, checkpoint_id, since=since, statuses=statuses
        )
        return await self._run(self._core.find(match, max_pages=max_pages))
