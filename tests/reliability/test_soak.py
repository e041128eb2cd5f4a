"""Load and soak: many small evaluations, two workers, clients polling and paging meanwhile."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._harness import dump, soak_scenario


@pytest.mark.slow
def test_soak_lists_each_evaluation_once_and_memory_stays_flat(
    tmp_path: Path, scaimind_api_key: str
) -> None:
    figures = soak_scenario(tmp_path, scaimind_api_key, evaluations=150)
    print(dump(figures))
    assert figures.completed_right == 150
    assert figures.paginations >= 1
    assert figures.pagination_problems == []
    assert figures.memory_growth <= 0.20
    assert figures.integrity == "ok"
