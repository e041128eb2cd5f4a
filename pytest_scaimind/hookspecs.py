"""Hooks the scaimind plugin calls; implement them in a conftest.py or a plugin."""

from __future__ import annotations

from typing import Any

import pytest


def pytest_scaimind_modify_request(config: pytest.Config, request: dict[str, Any]) -> None:
    """Edit the evaluation request body in place before it is prechecked, matched for reuse
    and submitted.

    `request` is the REST body: `{job_id, model_uri, checkpoint_id, benchmarks: [{name, dataset?,
    num_samples?, parameters?}]}`, holding the session's collected specs (called once), or a spec
    first met at run time (called again for it). Only the specs no existing evaluation serves are
    submitted. Benchmark edits change which results the gates read: keep names and positions
    (the n-th entry serves the n-th gate spec; entries you append are evaluated too).
    """


def pytest_scaimind_evaluation_done(config: pytest.Config, evaluation: Any) -> None:
    """See each finished `scaimind_nb.Evaluation` the session waited for, reused or new: COMPLETED,
    FAILED or CANCELLED (a FAILED one may still hold the results some gates read).

    Called in the process that waited for it: under xdist, once in every worker that needed it.
    """


@pytest.hookspec(firstresult=True)
def pytest_scaimind_score(config: pytest.Config, gate: Any, result: Any) -> float | None:
    """Return the score of `result` (a `scaimind_nb.BenchmarkResult`) for `gate`, or None to defer.

    Use it when the coordinator renders a metric the normaliser does not know; `gate.metric` is the
    requested metric name or None for the primary one; `result.extra` holds the unknown fields.
    """
