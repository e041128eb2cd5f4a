"""pytest_scaimind: benchmark quality gates for pytest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pytest_scaimind import _state

if TYPE_CHECKING:
    from scaimind_nb import BenchmarkResult

__all__ = ["InconclusiveGateWarning", "assert_benchmark"]


class InconclusiveGateWarning(UserWarning):
    """A confidence gate passed under --scaimind-inconclusive=pass without a decisive interval.

    Filter it like any warning, e.g. `-W error::pytest_scaimind.InconclusiveGateWarning` to make
    such gates fail after all, or `filterwarnings = ignore::pytest_scaimind.InconclusiveGateWarning`.
    """


def assert_benchmark(
    name: str,
    *,
    min_score: float | None = None,
    max_drop: float | None = None,
    max_rel_drop: float | None = None,
    metric: str | None = None,
    dataset: str | None = None,
    num_samples: int | None = None,
    parameters: dict[str, Any] | None = None,
    confidence: float | None = None,
) -> BenchmarkResult:
    """Gate the session's model on a benchmark; fails the test with a one-line reason, returns the result."""
    __tracebackhide__ = True
    item = _state.RUNNING.get()
    session = _state.session_of(item)
    if session is None:
        import pytest

        pytest.skip(_state.SKIP_REASON)
    return session.check(
        item,
        name,
        min_score=min_score,
        max_drop=max_drop,
        max_rel_drop=max_rel_drop,
        metric=metric,
        dataset=dataset,
        num_samples=num_samples,
        parameters=parameters,
        confidence=confidence,
    )
