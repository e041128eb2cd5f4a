"""Client.wait_steps: the rules of wait(), driven one poll at a time by a scheduler."""

from __future__ import annotations

import httpx
import pytest

from scaimind_nb import NotFoundError, Status, WaitTimeoutError
from scaimind_nb._core import Sleep, Steps


def _script(fake, *states: dict) -> None:
    fake.add({"evaluation_id": "eval_1", "job_id": "job_1", "model_uri": "scaidrive://o/m"})
    fake.scripts["eval_1"] = list(states)


def _drive(steps: Steps, clock) -> list[float]:
    """Honour every sleep on the fake clock; the sleeps asked for."""
    sleeps = []
    while (delay := steps.resume()) is not None:
        sleeps.append(delay)
        clock.now += delay
    return sleeps


def test_each_resume_is_one_poll_with_the_waits_backoff(make_client, fake, clock) -> None:
    _script(fake, *([{"status": "RUNNING"}] * 4), {"status": "COMPLETED"})
    seen: list[Status] = []
    steps = make_client().wait_steps(
        "eval_1",
        poll_interval=2.0,
        max_poll_interval=3.0,
        on_update=lambda e: seen.append(e.status),
    )
    assert len(fake.calls("GET")) == 0  # nothing is sent before the first resume
    sleeps = _drive(steps, clock)
    assert steps.done and steps.result().status is Status.COMPLETED
    assert len(fake.calls("GET")) == 5 and len(sleeps) == 4
    assert 1.5 <= sleeps[0] <= 2.0 and max(sleeps) <= 3.0  # the same backoff as Client.wait
    assert seen == [Status.RUNNING, Status.COMPLETED]  # on_update on changes only


def test_waking_early_polls_at_once(make_client, fake, clock) -> None:
    _script(fake, {"status": "RUNNING"}, {"status": "CANCELLED"})
    steps = make_client().wait_steps("eval_1", poll_interval=10.0)
    assert steps.resume() is not None
    assert isinstance(steps.pending, Sleep)
    # the scheduler does not sleep at all (a Cancel click woke it): the next resume polls now
    assert steps.resume() is None
    assert steps.result().status is Status.CANCELLED and len(fake.calls("GET")) == 2


def test_transient_errors_cost_a_sleep_not_the_wait(make_client, fake, clock) -> None:
    _script(fake, {"status": "RUNNING"}, {"status": "COMPLETED"})
    fake.faults += [lambda req, route: httpx.Response(503, json={"error": {"message": "busy"}})] * 3
    steps = make_client(max_retries=1).wait_steps("eval_1", poll_interval=1.0)
    _drive(steps, clock)
    assert steps.result().status is Status.COMPLETED


def test_a_non_retryable_error_ends_the_steps(make_client, fake, clock) -> None:
    steps = make_client().wait_steps("eval_missing")
    assert steps.resume() is None
    with pytest.raises(NotFoundError):
        steps.result()


def test_the_deadline_is_the_waits(make_client, fake, clock) -> None:
    _script(fake, {"status": "RUNNING"})
    steps = make_client().wait_steps("eval_1", timeout=5.0, poll_interval=1.0)
    _drive(steps, clock)
    with pytest.raises(WaitTimeoutError) as info:
        steps.result()
    assert info.value.last is not None and info.value.last.status is Status.RUNNING


def test_steps_refuse_misuse(make_client, fake) -> None:
    _script(fake, {"status": "RUNNING"})
    steps = make_client().wait_steps("eval_1")
    with pytest.raises(RuntimeError, match="has not finished"):
        steps.result()

    def gen():  # a bare generator without a perform callable cannot be resumed
        yield Sleep(1.0)

    with pytest.raises(RuntimeError, match="perform callable"):
        Steps(gen()).resume()
