"""Helpers of the engine tests: a RunContext without a server, the demo MMLU rows, sandbox probes.

Fixtures built on them live in conftest.py; test modules import helpers from here only."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from scaimind_local._benchmarks.base import InvalidBenchmark, RunContext
from scaimind_local._sandbox import Program, ProgramResult, Sandbox

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


def descendants(roots: set[int]) -> set[int]:
    """Every process below `roots` (host view), found by walking the host's /proc."""
    parent = {}
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if entry.isdigit():
            parent[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = set(roots)
    while frontier:
        frontier = {pid for pid, ppid in parent.items() if ppid in frontier} - found
        found |= frontier
    return found


def server_pids(sandbox: Sandbox) -> set[int]:
    return {server.proc.pid for server in sandbox._servers}


def run_all(sandbox: Sandbox, programs: Sequence[Program]) -> list[ProgramResult]:
    """Run `programs` `sandbox.workers` at a time (as humaneval does) and return their results in order."""
    with ThreadPoolExecutor(max_workers=sandbox.workers) as pool:
        return list(pool.map(sandbox.run, programs))
