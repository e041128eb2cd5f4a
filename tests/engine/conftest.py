"""Fixtures of the engine tests (their helpers are in _helpers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scaimind_local import LocalCoordinator
from scaimind_local._benchmarks.base import RunContext

from ._helpers import make_context


@pytest.fixture
def ctx() -> RunContext:
    return make_context()


@pytest.fixture
def default_coordinator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scaimind_api_key: str
) -> Iterator[LocalCoordinator]:
    """A coordinator as `scaimind-local serve` starts by default: no MMLU data configured."""
    monkeypatch.delenv("SCAIMIND_MMLU_DATA", raising=False)
    with LocalCoordinator(
        tmp_path / "db.sqlite", tmp_path / "drive", api_key=scaimind_api_key
    ) as coordinator:
        yield coordinator
