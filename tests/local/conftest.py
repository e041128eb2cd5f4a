"""Fixtures of the coordinator's tests: authenticated httpx clients on the shared coordinators."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from scaimind_local import LocalCoordinator

from ._util import client_for


@pytest.fixture
def api(coordinator: LocalCoordinator) -> Iterator[httpx.Client]:
    with client_for(coordinator) as client:
        yield client


@pytest.fixture
def fresh_api(fresh_coordinator: LocalCoordinator) -> Iterator[httpx.Client]:
    with client_for(fresh_coordinator) as client:
        yield client
