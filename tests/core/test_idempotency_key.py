"""Submit's Idempotency-Key: one per call, the same on every attempt, relied on once echoed."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from scaimind_nb import ServerError

from ._fakes import FakeCoordinator, raise_, respond

ARGS = ("job_1", "scaidrive://o/m", ["mmlu"])


def _keys(fake: FakeCoordinator) -> list[str]:
    return [r.headers["idempotency-key"] for r in fake.calls("POST", "/evaluations")]


def _lost_answer(request: httpx.Request, route: Any) -> None:
    """The server created the evaluation, then the answer was lost on the way back."""
    route(request)
    raise httpx.ReadTimeout("simulated", request=request)


def test_every_attempt_of_one_submit_sends_the_same_key(make_client, fake: FakeCoordinator) -> None:
    fake.faults = [raise_(httpx.ConnectError), raise_(httpx.ConnectTimeout), respond(503)]
    client = make_client(max_retries=3)
    client.submit(*ARGS)
    keys = _keys(fake)
    assert len(keys) == 4 and len(set(keys)) == 1 and keys[0]
    client.submit(*ARGS)
    assert len(set(_keys(fake))) == 2  # a new submit call, a new key


def test_echoed_key_lets_an_ambiguous_failure_be_resent_without_lookup(
    make_client, fake: FakeCoordinator
) -> None:
    fake.honour_keys = True
    client = make_client()
    client.submit(*ARGS)  # its answer echoes the key: the coordinator honours keys
    fake.requests.clear()
    fake.faults = [_lost_answer]
    ev = client.submit(*ARGS, checkpoint_id="c2")
    assert [r.method for r in fake.requests] == ["POST", "POST"]
    assert len(set(_keys(fake))) == 1
    assert len(fake.evaluations) == 2 and ev.evaluation_id == "eval_0002"


def test_a_coordinator_that_ignores_keys_keeps_the_listing_lookup(
    make_client, fake: FakeCoordinator
) -> None:
    client = make_client()
    client.submit(*ARGS)  # no echo: support stays unknown
    fake.requests.clear()
    fake.faults = [_lost_answer]
    ev = client.submit(*ARGS, checkpoint_id="c2")
    assert [r.method for r in fake.requests][:2] == ["POST", "GET"]
    assert len(fake.calls("POST")) == 1
    assert len(fake.evaluations) == 2 and ev.evaluation_id == "eval_0002"


def test_first_submit_falls_back_to_the_lookup_even_on_a_key_honouring_server(
    make_client, fake: FakeCoordinator
) -> None:
    fake.honour_keys = True
    fake.faults = [_lost_answer]
    ev = make_client().submit(*ARGS)
    assert [r.method for r in fake.requests][:2] == ["POST", "GET"]
    assert len(fake.evaluations) == 1 and ev.evaluation_id == "eval_0001"


def test_last_ambiguous_failure_is_still_looked_up_when_keys_are_honoured(
    make_client, fake: FakeCoordinator
) -> None:
    fake.honour_keys = True
    client = make_client(max_retries=1)
    client.submit(*ARGS)
    fake.requests.clear()
    fake.faults = [respond(503, text="busy"), respond(503, text="busy")]
    with pytest.raises(ServerError):
        client.submit(*ARGS, checkpoint_id="c2")
    # re-sent at once after the first 503; the final one (no retry left) is looked up
    methods = [r.method for r in fake.requests]
    assert methods[:3] == ["POST", "POST", "GET"] and methods.count("POST") == 2
    assert len(set(_keys(fake))) == 1


def test_async_client_resends_under_the_same_key(make_async_client, fake: FakeCoordinator) -> None:
    fake.honour_keys = True

    async def main() -> str:
        async with make_async_client() as client:
            await client.submit(*ARGS)
            fake.requests.clear()
            fake.faults = [_lost_answer]
            ev = await client.submit(*ARGS, checkpoint_id="c2")
            return ev.evaluation_id

    assert asyncio.run(main()) == "eval_0002"
    assert [r.method for r in fake.requests] == ["POST", "POST"]
    assert len(set(_keys(fake))) == 1 and len(fake.evaluations) == 2
