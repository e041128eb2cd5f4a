"""Arbitrary JSON at the normaliser: it answers an Evaluation or a documented ScaimindError."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings, strategies as st

from scaimind_nb import Evaluation, ScaimindError, Status, parse_evaluation

_KEYS = [
    "data",
    "evaluation_id",
    "evaluationId",
    "id",
    "job_id",
    "jobId",
    "status",
    "results",
    "benchmark_results",
    "benchmarkResults",
    "benchmark",
    "name",
    "benchmark_name",
    "score",
    "metrics",
    "value",
    "result",
    "evaluation",
    "num_samples",
    "numSamples",
    "stderr",
    "error",
    "created_at",
    "createdAt",
    "updated_at",
    "progress",
    "completed",
    "total",
    "model_uri",
    "checkpoint_id",
    "benchmarks",
    "message",
    "code",
    "extra",
]
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "NaN",
            "Infinity",
            "-Infinity",
            "COMPLETED",
            "STATUS_RUNNING",
            "evaluation_status_failed",
            "2026-11-26T12:00:00.123456789Z",
            "2026-11-26T12:00:00+05:30",
            "2026-13-45T99:99:99Z",
            "9007199254740993",
            "",
            "eval_1",
            "1e309",
            "0x10",
        ]
    ),
    st.text(max_size=12),
)
_JSON = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(_KEYS), st.text(max_size=8)), children, max_size=6
        ),
    ),
    max_leaves=30,
)
_SMALL_JSON = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(_KEYS), children, max_size=3),
    ),
    max_leaves=6,
)
_EVALUATION_LIKE = st.fixed_dictionaries(
    {"evaluation_id": st.one_of(st.text(min_size=1, max_size=10), st.integers())},
    optional={key: _SMALL_JSON for key in _KEYS if key != "evaluation_id"},
)


def _check(payload: object) -> None:
    try:
        evaluation = parse_evaluation(payload)  # type: ignore[arg-type]
    except ScaimindError as exc:
        assert str(exc), "an error must say what is wrong"
        return
    assert isinstance(evaluation, Evaluation)
    assert isinstance(evaluation.status, Status)
    for result in evaluation.results:
        assert all(isinstance(v, float) for v in result.metrics.values())
        assert all(isinstance(k, str) for k in result.metrics)
    repr(evaluation)
    for result in evaluation.results:
        try:
            score = result.score
        except ScaimindError:
            continue
        assert isinstance(score, float) or math.isnan(score)


@settings(max_examples=200, deadline=None)
@given(payload=_JSON)
def test_any_json_gives_evaluation_or_documented_error(payload: object) -> None:
    _check(payload)


@settings(max_examples=100, deadline=None)
@given(payload=_EVALUATION_LIKE, envelope=st.booleans())
def test_evaluation_shaped_json_gives_evaluation_or_documented_error(
    payload: dict[str, object], envelope: bool
) -> None:
    _check({"data": payload} if envelope else payload)


@pytest.mark.parametrize(
    "stamp",
    [-62135596801, 1e300, math.nan, math.inf, {"seconds": "9" * 20}, {"seconds": -(10**15)}],
)
def test_unrepresentable_timestamps_are_unset_not_a_crash(stamp: object) -> None:
    evaluation = parse_evaluation({"evaluation_id": "eval_t", "created_at": stamp, "status": 3})
    assert evaluation.created_at is None
