"""Fixtures of the core tests: the fake coordinator, the fake clock and client factories."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from scaimind_nb import AsyncClient, Client

from ._fakes import HOST, KEY, FakeCoordinator, FakeTime


@pytest.fixture
def fake() -> FakeCoordinator:
    return FakeCoordinator()


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_client(fake: FakeCoordinator, clock: FakeTime) -> Iterator[Callable[..., Client]]:
    clients: list[Client] = []

    def factory(**kw: Any) -> Client:
        kw.setdefault("poll_interval", 1.0)
        client = Client(HOST, KEY, transport=httpx.MockTransport(fake), **kw)
        client._sleep = clock.sleep
        client._core.clock = clock.monotonic
        clients.append(client)
        return client

    yield factory
    for c in clients:
        c.close()


@pytest.fixture
def make_async_client(fake: FakeCoordinator, clock: FakeTime) -> Callable[..., AsyncClient]:
    def factory(**kw: Any) -> AsyncClient:
        client = AsyncClient(HOST, KEY, transport=httpx.MockTransport(fake), **kw)
        client._sleep = clock.asleep
        client._core.clock = clock.monotonic
        return client

    return factory
