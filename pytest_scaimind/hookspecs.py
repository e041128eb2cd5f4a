"""Hooks the scaimind plugin calls; implement them in a conftest.py or a plugin."""

from __future__ import annotations

from typing import Any

import pytest


def pytest_scaimind_modify_request(config: pytest.Config, request: dict[str, Any]) -> None:
    """Edit the evaluation request body in place before it is matched for reuse and submitted.

    `request` is the REST body: `{job_id, model_uri, checkpoint_id, benchmarks: [{name, dataset?,
    num_samples?, parameters?}]}`. Benchmark edits change which results the gates read, so keep names.
    """


def pytest_scaimind_evaluation_done(config: pytest.Config, evaluation: Any) -> None:
    """See each COMPLETED `scaimind_nb.Evaluation` the session used, reused or new.

    Called in the process that waited for it: under xdist, once in every worker that needed it.
    """


@pytest.hookspec(firstresult=True)
def pytest_scaimind_score(config: pytest.Config, gate: Any, result: Any) -> float | None:
    """Return the score of `result` (a `scaimind_nb.BenchmarkResult`) for `gate`, or None to defer.

    Use it when the coordinator renders a metric the normaliser does not know; `gate.metric` is the
    requested metric name or None for the primary one; `result.extra` holds the unknown fields.
    """
