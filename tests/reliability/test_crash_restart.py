"""Crashes: SIGKILL the coordinator while 30 evaluations are queued or running, restart, repeat."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._harness import crash_scenario, dump


@pytest.mark.slow
def test_sigkill_restarts_lose_nothing_and_run_nothing_twice(
    tmp_path: Path, scaimind_api_key: str
) -> None:
    figures = crash_scenario(tmp_path, scaimind_api_key, evaluations=30, kills=3, seed=5)
    print(dump(figures))
    assert figures.kills == 3
    assert figures.interrupted >= 1, "at least one kill must hit a running evaluation"
    assert figures.wrong_waits == []
    assert figures.lost == 0
    assert figures.completed_right == 30
    assert figures.ran_twice == []
