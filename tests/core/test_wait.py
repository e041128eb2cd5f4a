"""wait(): deadline on the monotonic clock, capped backoff, transient errors, terminal states."""

from __future__ import annotations

import logging

import httpx
import pytest

from scaimind_nb import EvaluationFailedError, NotFoundError, Status, WaitTimeoutError

from ._fakes import FakeCoordinator, FakeTime, raise_, respond


def _script(fake: FakeCoordinator, *states: dict) -> None:
    fake.add({"evaluation_id": "eval_1", "job_id": "job_1", "model_uri": "scaidrive://o/m"})
    fake.scripts["eval_1"] = list(states)


def test_wait_returns_terminal_and_reports_each_change(make_client, fake: FakeCoordinator) -> None:
    _script(
        fake,
        {"status": "PENDING"},
        {"status": "RUNNING", "progress": [{"benchmark": "mmlu", "completed": "1", "total": "4"}]},
        {},
        {"status": "RUNNING", "progress": [{"benchmark": "mmlu", "completed": "3", "total": "4"}]},
        {"status": "COMPLETED", "results": [{"benchmark": "mmlu", "metrics": {"accuracy": 0.75}}]},
    )
    seen: list[tuple[Status, int]] = []
    ev = make_client().wait(
        "eval_1",
        on_update=lambda e: seen.append((e.status, e.progress[0].completed if e.progress else 0)),
    )
    assert ev.status is Status.COMPLETED and ev.score("mmlu") == 0.75
    assert seen == [
        (Status.PENDING, 0),
        (Status.RUNNING, 1),
        (Status.RUNNING, 3),
        (Status.COMPLETED, 3),
    ]
    assert len(fake.calls("GET")) == 5


def test_poll_interval_backs_off_to_the_cap(
    make_client, fake: FakeCoordinator, clock: FakeTime
) -> None:
    _script(fake, *([{"status": "RUNNING"}] * 10), {"status": "COMPLETED"})
    make_client().wait("eval_1", poll_interval=2.0, max_poll_interval=5.0)
    assert len(clock.sleeps) == 10
    assert 1.5 <= clock.sleeps[0] <= 2.0
    assert all(b >= a * 0.75 - 1e-9 for a, b in zip(clock.sleeps, clock.sleeps[1:], strict=False))
    assert max(clock.sleeps) <= 5.0 and clock.sleeps[-1] >= 3.75


@pytest.mark.parametrize("status", ["FAILED", "CANCELLED"])
def test_failed_is_returned_or_raised(make_client, fake: FakeCoordinator, status: str) -> None:
    _script(fake, {"status": status, "error": {"code": "INTERNAL", "message": "model crashed"}})
    client = make_client()
    assert client.wait("eval_1").status is Status(status)
    fake.scripts["eval_1"] = [{}]
    with pytest.raises(EvaluationFailedError, match="model crashed") as info:
        client.wait("eval_1", raise_on_failure=True)
    assert info.value.evaluation_id == "eval_1" and info.value.reason == "model crashed"
    assert info.value.evaluation.status is Status(status)


def test_deadline_raises_with_last_snapshot(
    make_client, fake: FakeCoordinator, clock: FakeTime
) -> None:
    _script(fake, *([{"status": "RUNNING"}] * 1000))
    start = clock.now
    with pytest.raises(WaitTimeoutError) as info:
        make_client().wait("eval_1", timeout=30, poll_interval=1, max_poll_interval=4)
    err = info.value
    assert isinstance(err, TimeoutError)
    assert (
        err.evaluation_id == "eval_1" and err.last is not None and err.last.status is Status.RUNNING
    )
    assert 30 <= err.elapsed <= 30.001 and clock.now - start <= 30.001
    assert "wait('eval_1')" in str(err)


def test_timeout_none_uses_client_wait_timeout(
    make_client, fake: FakeCoordinator, clock: FakeTime
) -> None:
    _script(fake, *([{"status": "RUNNING"}] * 10_000))
    with pytest.raises(WaitTimeoutError):
        make_client(wait_timeout=120, max_poll_interval=10).wait("eval_1", timeout=None)
    assert 119.9 <= sum(clock.sleeps) <= 120.001


def test_transient_failures_do_not_end_the_wait(make_client, fake: FakeCoordinator) -> None:
    _script(fake, {"status": "RUNNING"}, {"status": "COMPLETED"})
    fake.faults = [
        lambda r, route: route(r),
        *[respond(503, text="busy")] * 3,  # one whole GET call with its 2 retries fails
        raise_(httpx.ConnectError),
    ]
    ev = make_client(max_retries=2).wait("eval_1")
    assert ev.status is Status.COMPLETED


def test_non_retryable_error_ends_the_wait(make_client, fake: FakeCoordinator) -> None:
    with pytest.raises(NotFoundError):
        make_client().wait("missing")


def test_unknown_status_keeps_polling_and_logs_once(
    make_client, fake: FakeCoordinator, caplog: pytest.LogCaptureFixture
) -> None:
    _script(fake, {"status": "WARMING_UP"}, {}, {}, {"status": "COMPLETED"})
    with caplog.at_level(logging.WARNING, logger="scaimind_nb"):
        assert make_client().wait("eval_1").status is Status.COMPLETED
    notes = [r for r in caplog.records if "unknown status" in r.getMessage()]
    assert len(notes) == 1 and "WARMING_UP" in notes[0].getMessage()


@pytest.mark.parametrize(
    "kwargs", [{"timeout": 0}, {"timeout": -5}, {"poll_interval": -1}, {"timeout": float("nan")}]
)
def test_bad_wait_arguments(make_client, fake: FakeCoordinator, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        make_client().wait("eval_1", **kwargs)
    assert fake.requests == []
