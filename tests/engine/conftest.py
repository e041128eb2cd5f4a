"""Helpers for the engine tests: a RunContext without a server and scripted models."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scaimind_local import LocalCoordinator
from scaimind_local._benchmarks.base import InvalidBenchmark, RunContext

DEMO_DATA = Path(__file__).parents[2] / "scaimind_local" / "_demo_data"
MMLU_DEMO = DEMO_DATA / "mmlu"


def demo_rows(split: str = "test") -> list[tuple[str, list[str]]]:
    """(subject, CSV row) of the demo MMLU set, read straight from its files."""
    rows = []
    for file in sorted((MMLU_DEMO / "data" / split).glob("*.csv")):
        with open(file, newline="") as fh:
            rows += [(file.name.rsplit("_", 1)[0], row) for row in csv.reader(fh)]
    return rows


class Progress:
    """Records the (done, total) reports of a run; cancels after `cancel_at` reports."""

    def __init__(self, cancel_at: int | None = None) -> None:
        self.reports: list[tuple[int, int]] = []
        self.cancel_at = cancel_at

    def report(self, done: int, total: int) -> None:
        self.reports.append((done, total))

    def cancelled(self) -> bool:
        return self.cancel_at is not None and len(self.reports) >= self.cancel_at


def _resolve(uri: str) -> Path:
    path = Path(uri.removeprefix("file://"))
    if not path.exists():
        raise InvalidBenchmark(f"dataset {uri} not found")
    return path


def make_context(progress: Progress | None = None, **settings: Any) -> RunContext:
    """A RunContext as the coordinator builds it, with local paths allowed."""
    progress = progress or Progress()
    return RunContext(
        evaluation_id="eval_test",
        resolve_path=_resolve,
        report_progress=progress.report,
        is_cancelled=progress.cancelled,
        settings=settings,
        workers=2,
    )


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
