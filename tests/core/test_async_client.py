"""AsyncClient drives the same core: submit, retries, duplicate-safe submit, paging, wait."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from scaimind_nb import (
    AsyncClient,
    NotFoundError,
    ScaimindValueError,
    Status,
    WaitTimeoutError,
)

from ._fakes import HOST, KEY, FakeCoordinator, FakeTime, raise_, respond


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_submit_wait_and_async_on_update(make_async_client, fake: FakeCoordinator) -> None:
    seen: list[Status] = []

    async def on_update(ev: Any) -> None:
        await asyncio.sleep(0)
        seen.append(ev.status)

    async def main() -> Any:
        async with make_async_client() as client:
            ev = await client.submit("job_1", "scaidrive://o/m", ["mmlu"])
            fake.scripts[ev.evaluation_id] = [
                {"status": "RUNNING"},
                {"status": "COMPLETED", "results": [{"benchmark": "mmlu", "score": 0.5}]},
            ]
            done = await client.wait(ev.evaluation_id, on_update=on_update)
        assert client._http.is_closed
        return done

    done = run(main())
    assert done.score("mmlu") == 0.5 and seen == [Status.RUNNING, Status.COMPLETED]


def test_retries_and_errors(make_async_client, fake: FakeCoordinator, clock: FakeTime) -> None:
    fake.add({"evaluation_id": "eval_1"})
    fake.faults = [respond(503, headers={"Retry-After": "2"}), raise_(httpx.RemoteProtocolError)]

    async def main() -> None:
        async with make_async_client() as client:
            assert (await client.get("eval_1")).evaluation_id == "eval_1"
            with pytest.raises(NotFoundError):
                await client.get("nope")

    run(main())
    assert clock.sleeps[0] == 2.0 and len(clock.sleeps) == 2


def test_ambiguous_submit_is_reconciled(make_async_client, fake: FakeCoordinator) -> None:
    fake.faults = [raise_(httpx.ReadTimeout, after_route=True)]

    async def main() -> Any:
        async with make_async_client() as client:
            ev = await client.submit("job_1", "scaidrive://o/m", ["mmlu"])
            again = await client.find_evaluation("job_1", "scaidrive://o/m", ["mmlu"])
            return ev, again

    ev, again = run(main())
    assert len(fake.evaluations) == 1 and len(fake.calls("POST")) == 1
    assert ev.evaluation_id == again.evaluation_id == "eval_0001"


def test_iter_evaluations_and_other_calls(make_async_client, fake: FakeCoordinator) -> None:
    for i in range(5):
        fake.add({"evaluation_id": f"eval_{i}", "status": "RUNNING"}, age=i)

    async def main() -> tuple[list[str], Any, Any, Any]:
        async with make_async_client() as client:
            ids = [e.evaluation_id async for e in client.iter_evaluations(page_size=2)]
            return (
                ids,
                await client.cancel("eval_0"),
                await client.get_job("job_1"),
                await client.list_benchmarks(),
            )

    ids, cancelled, job, names = run(main())
    assert ids == [f"eval_{i}" for i in range(5)]
    assert (
        cancelled.status is Status.CANCELLED
        and job["job_id"] == "job_1"
        and names == ["mmlu", "humaneval"]
    )


def test_wait_deadline(make_async_client, fake: FakeCoordinator) -> None:
    fake.add({"evaluation_id": "eval_1", "status": "RUNNING"})

    async def main() -> None:
        async with make_async_client() as client:
            await client.wait("eval_1", timeout=10)

    with pytest.raises(WaitTimeoutError) as info:
        run(main())
    assert info.value.last is not None and info.value.last.status is Status.RUNNING


def test_constructor_validates_and_hides_key() -> None:
    with pytest.raises(ScaimindValueError, match="hang forever"):
        AsyncClient(HOST, KEY, timeout=None)
    client = AsyncClient(HOST, KEY)
    assert KEY not in repr(client) and "api_key='***'" in repr(client)
    run(client.aclose())
