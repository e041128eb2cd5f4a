"""Client.precheck (typed answer, "not available" fallback), find_for_each, failed results,
and what wait's on_poll and WaitTimeoutError say about failing polls (fake clock)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from scaimind_nb import (
    APIConnectionError,
    Benchmark,
    PollEvent,
    PrecheckNotAvailableError,
    ProtocolError,
    ScaimindKeyError,
    Status,
    WaitTimeoutError,
    parse_evaluation,
)

from ._fakes import HOST, FakeCoordinator, FakeTime, raise_, respond

MMLU = Benchmark("mmlu", num_samples=100)
QA = Benchmark("custom-qa", dataset="scaidrive://o/qa.jsonl")


def _answer(*entries: dict[str, Any], **model: Any) -> Any:
    """A fault that answers the precheck route with `entries` (camelCase, as another encoder)."""
    return respond(200, {"data": {"benchmarks": list(entries), **model}})


def test_precheck_gives_a_typed_answer_per_spec(make_client, fake: FakeCoordinator) -> None:
    fake.faults = [
        _answer(
            {"name": "mmlu", "data": {"digest": "sha256:aa", "records": "14042", "source": "pkg"}},
            {"name": "custom-qa", "problem": "scaidrive://o/qa.jsonl line 2: invalid JSON"},
            modelUri="scaidrive://o/m",
            modelDigest="sha256:bb",
        )
    ]
    answer = make_client().precheck("scaidrive://o/m", [MMLU, QA])
    [request] = fake.requests
    assert request.method == "POST" and request.url.path.endswith("/precheck")
    assert json.loads(request.content) == {
        "benchmarks": [MMLU.to_request(), QA.to_request()],
        "model_uri": "scaidrive://o/m",
    }
    assert "idempotency-key" not in request.headers  # a precheck changes nothing
    assert answer.model_digest == "sha256:bb" and answer.model_problem is None
    mmlu = answer.check({"name": "mmlu", "num_samples": 100})
    assert mmlu.ok and mmlu.data is not None
    assert (mmlu.data.digest, mmlu.data.records, mmlu.data.source) == ("sha256:aa", 14042, "pkg")
    qa = answer.check(QA)
    assert not qa.ok and qa.data is None and "line 2" in (qa.problem or "")
    assert not answer.ok
    assert answer.problems() == ["custom-qa: scaidrive://o/qa.jsonl line 2: invalid JSON"]
    with pytest.raises(ScaimindKeyError):
        answer.check("humaneval")


def test_precheck_reports_a_model_problem(make_client, fake: FakeCoordinator) -> None:
    fake.faults = [_answer({"name": "mmlu"}, model_problem="no model at scaidrive://o/x")]
    answer = make_client().precheck("scaidrive://o/x", "mmlu")
    assert answer.model_digest is None and answer.model_problem == "no model at scaidrive://o/x"
    assert answer.problems() == ["model None: no model at scaidrive://o/x"]
    assert answer.check("mmlu").ok and answer.check("mmlu").data is None


def test_precheck_answer_must_cover_every_spec(make_client, fake: FakeCoordinator) -> None:
    fake.faults = [_answer({"name": "mmlu"})]
    with pytest.raises(ProtocolError, match="one entry per spec asked"):
        make_client().precheck(None, [MMLU, QA])


@pytest.mark.parametrize("status", [404, 405, 501])
def test_a_coordinator_without_the_route_answers_not_available(
    make_client, fake: FakeCoordinator, status: int
) -> None:
    fake.faults = [respond(status, {"error": {"message": "no such route"}})]
    with pytest.raises(PrecheckNotAvailableError, match="has no precheck route") as info:
        make_client(max_retries=0).precheck(None, [MMLU])
    assert info.value.host == HOST


def test_precheck_validates_before_any_request(make_client, fake: FakeCoordinator) -> None:
    with pytest.raises(ValueError):
        make_client().precheck("", [MMLU])
    with pytest.raises(ValueError):
        make_client().precheck(None, [])
    assert fake.requests == []


def test_async_precheck_is_the_same(make_async_client, fake: FakeCoordinator) -> None:
    fake.faults = [_answer({"name": "mmlu", "data": {"digest": "sha256:aa"}})]

    async def main() -> Any:
        async with make_async_client() as client:
            first = await client.precheck(None, [MMLU])
            with pytest.raises(PrecheckNotAvailableError):
                await client.precheck(None, [MMLU])
            return first

    answer = asyncio.run(main())
    assert answer.check(MMLU).data.digest == "sha256:aa"


def _held(fake: FakeCoordinator, eid: str, job: str, *specs: Benchmark, age: float) -> None:
    fake.add(
        {
            "evaluation_id": eid,
            "job_id": job,
            "model_uri": "scaidrive://o/m",
            "status": "COMPLETED",
            "benchmarks": [s.to_request() for s in specs],
        },
        age=age,
    )


def test_find_for_each_takes_the_newest_holder_of_each_spec(
    make_client, fake: FakeCoordinator
) -> None:
    _held(fake, "eval_old", "job_1", MMLU, QA, age=30)
    _held(fake, "eval_new", "job_1", QA, age=20)
    _held(fake, "eval_other_job", "job_2", MMLU, age=10)
    client = make_client()
    found = client.find_for_each("job_1", "scaidrive://o/m", [MMLU, QA, Benchmark("humaneval")])
    assert {s.name: e.evaluation_id for s, e in found.items()} == {
        "mmlu": "eval_old",
        "custom-qa": "eval_new",
    }
    refused = client.find_for_each(
        "job_1",
        "scaidrive://o/m",
        [QA],
        accept=lambda ev, spec: ev.evaluation_id != "eval_new",
    )
    assert {s.name: e.evaluation_id for s, e in refused.items()} == {"custom-qa": "eval_old"}


def test_find_for_each_stops_once_every_spec_has_a_holder(
    make_client, fake: FakeCoordinator
) -> None:
    for i in range(120):
        _held(fake, f"eval_{i:03d}", "job_1", MMLU, age=1000 + i)
    _held(fake, "eval_top", "job_1", MMLU, QA, age=1)
    found = make_client().find_for_each("job_1", "scaidrive://o/m", [MMLU, QA], max_pages=25)
    assert {e.evaluation_id for e in found.values()} == {"eval_top"}
    assert len(fake.calls("GET", "/evaluations")) == 1  # one listing page
    assert len(fake.calls("GET", "/evaluations/eval_top")) == 1


def test_a_failed_result_says_why_it_has_no_score() -> None:
    ev = parse_evaluation(
        {
            "evaluation_id": "eval_1",
            "status": "FAILED",
            "results": [
                {"benchmark": "mmlu", "metrics": {"accuracy": 0.5}, "status": "COMPLETED"},
                {
                    "benchmark": "custom-qa",
                    "metrics": {},
                    "status": "FAILED",
                    "error": {"code": "INVALID_ARGUMENT", "message": "line 2: invalid JSON"},
                },
            ],
        }
    )
    ok, bad = ev.result("mmlu"), ev.result("custom-qa")
    assert not ok.failed and ok.error is None and ok.score == 0.5
    assert bad.failed and bad.error == "line 2: invalid JSON"
    with pytest.raises(ScaimindKeyError, match="custom-qa' failed, so it has no score: line 2"):
        _ = bad.score


def _script(fake: FakeCoordinator, *states: dict[str, Any]) -> None:
    fake.add({"evaluation_id": "eval_1", "job_id": "job_1", "model_uri": "scaidrive://o/m"})
    fake.scripts["eval_1"] = list(states)


def test_on_poll_sees_every_poll_and_for_how_long_polls_failed(
    make_client, fake: FakeCoordinator, clock: FakeTime
) -> None:
    _script(fake, {"status": "RUNNING"}, {"status": "RUNNING"}, {"status": "COMPLETED"})
    passthrough = lambda request, route: route(request)  # noqa: E731
    fake.faults = [passthrough, raise_(httpx.ConnectError), raise_(httpx.ConnectError)]
    events: list[PollEvent] = []
    updates: list[Status] = []
    ev = make_client(max_retries=0).wait(
        "eval_1",
        poll_interval=4,
        on_update=lambda e: updates.append(e.status),
        on_poll=events.append,
    )
    assert ev.status is Status.COMPLETED
    assert updates == [Status.RUNNING, Status.COMPLETED]  # on_update: changes only
    assert len(events) == 4  # every poll that did not end the wait
    assert [e.error is None for e in events] == [True, False, False, True]
    assert isinstance(events[1].error, APIConnectionError)
    assert events[1].failing_for == 0.0
    assert events[2].failing_for == pytest.approx(clock.sleeps[1])
    assert events[3].failing_for is None
    assert all(e.evaluation is not None and e.evaluation.status is Status.RUNNING for e in events)
    assert [e.elapsed for e in events] == pytest.approx([sum(clock.sleeps[:i]) for i in range(4)])


def test_a_timeout_says_the_polls_had_been_failing(
    make_client, fake: FakeCoordinator, clock: FakeTime
) -> None:
    _script(fake, *([{"status": "RUNNING"}] * 100))
    passthrough = lambda request, route: route(request)  # noqa: E731
    fake.faults = [passthrough, passthrough, *[raise_(httpx.ConnectError)] * 100]
    with pytest.raises(WaitTimeoutError) as info:
        make_client(max_retries=0).wait("eval_1", timeout=60, poll_interval=4, max_poll_interval=4)
    err = info.value
    assert err.last is not None and err.last.status is Status.RUNNING
    assert isinstance(err.last_error, APIConnectionError)
    assert err.failing_for is not None and 50 < err.failing_for < err.elapsed <= 60.001
    assert f"the polls have failed for the last {err.failing_for:.1f}s" in str(err)


def test_a_timeout_after_answered_polls_has_no_failure(
    make_client, fake: FakeCoordinator, clock: FakeTime
) -> None:
    _script(fake, *([{"status": "QUEUED"}] * 100))
    with pytest.raises(WaitTimeoutError) as info:
        make_client().wait("eval_1", timeout=20, poll_interval=4)
    assert info.value.failing_for is None and info.value.last_error is None
    assert "polls have failed" not in str(info.value)


def test_a_poll_cut_short_by_the_waits_own_deadline_is_not_a_failing_poll(
    make_client, fake: FakeCoordinator, clock: FakeTime
) -> None:
    _script(fake, *([{"status": "RUNNING"}] * 100))
    passthrough = lambda request, route: route(request)  # noqa: E731

    def slow_past_the_deadline(request: httpx.Request, route: Any) -> None:
        clock.now += 100  # the GET outlives the wait's remaining time
        raise httpx.ReadTimeout("simulated", request=request)

    fake.faults = [passthrough, slow_past_the_deadline]
    with pytest.raises(WaitTimeoutError) as info:
        make_client(max_retries=0).wait("eval_1", timeout=30, poll_interval=4)
    assert info.value.failing_for is None and info.value.last_error is None
