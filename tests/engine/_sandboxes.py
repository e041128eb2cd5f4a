"""A test helper: run programs on every fork server of a sandbox at once."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from scaimind_local._sandbox import Program, ProgramResult, Sandbox


def run_all(sandbox: Sandbox, programs: Sequence[Program]) -> list[ProgramResult]:
    """Run `programs` `sandbox.workers` at a time (as humaneval does) and return their results in order."""
    with ThreadPoolExecutor(max_workers=sandbox.workers) as pool:
        return list(pool.map(sandbox.run, programs))
