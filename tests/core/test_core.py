"""The sans-I/O core as plain functions: Retry-After parsing, backoff with seeded jitter, Pager, Match."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from scaimind_nb import Evaluation, ProtocolError, Status, parse_evaluation
from scaimind_nb._core import Match, Pager, Screen, backoff, parse_retry_after


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "-1"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_parse_retry_after_http_date_in_the_future() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=42), usegmt=True)
    assert parse_retry_after({"retry-after": header}, now=now.timestamp()) == 42.0


def test_backoff_is_capped_exponential_with_jitter() -> None:
    rng = random.Random(7)
    for retry, step in enumerate([0.5, 1, 2, 4, 8, 8, 8]):
        delays = [backoff(retry, rng) for _ in range(200)]
        assert all(0.75 * step <= d <= step for d in delays)
        assert max(delays) - min(delays) > 0.1 * step  # jittered, not constant
    assert backoff(3, random.Random(1)) == backoff(3, random.Random(1))


def _page(ids: list[str], token: str | None) -> tuple[list[Evaluation], str | None]:
    return [parse_evaluation({"job_id": i}) for i in ids], token


def test_pager_token_logic() -> None:
    pager = Pager(2, limit=3)
    assert pager.more and pager.token is None
    assert len(pager.take(*_page(["a", "b"], "t1"))) == 2 and pager.token == "t1"
    assert [e.evaluation_id for e in pager.take(*_page(["c", "d"], "t2"))] == ["c"]
    assert not pager.more
    pager = Pager(5)
    pager.take(*_page([], "t1"))
    assert pager.more and pager.token == "t1"
    with pytest.raises(ProtocolError, match="repeated"):
        pager.take(*_page([], "t1"))
    capped = Pager(5, max_pages=1)
    capped.take(*_page(["a"], "t1"))
    assert not capped.more


def test_match_screen_and_matches() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    m = Match.build("job_1", "m", ["mmlu"], since=60, now=now, statuses=["completed"])
    assert m.since == now - timedelta(seconds=60) and m.statuses == frozenset({Status.COMPLETED})
    old = parse_evaluation(
        {"job_id": "e1", "created_at": "2026-11-26T11:58:00Z", "status": "COMPLETED"}
    )
    running = parse_evaluation(
        {"job_id": "e2", "created_at": "2026-11-26T11:59:30Z", "status": "RUNNING"}
    )
    other = parse_evaluation(
        {"job_id": "e3", "labels": {"parent_job_id": "job_9"}, "status": "COMPLETED"}
    )
    fresh = parse_evaluation({"job_id": "e4", "status": "COMPLETED"})
    assert [m.screen(e) for e in (old, running, other, fresh)] == [
        Screen.STOP,
        Screen.SKIP,
        Screen.SKIP,
        Screen.CHECK,
    ]
    full = parse_evaluation(
        {
            "evaluation_id": "e4",
            "job_id": "job_1",
            "model_uri": "m",
            "status": "COMPLETED",
            "benchmarks": ["mmlu"],
        }
    )
    assert m.matches(full)
    assert not m.matches(parse_evaluation({**full.raw, "checkpoint_id": "c"}))
    assert not m.matches(
        parse_evaluation({**full.raw, "benchmarks": [{"name": "mmlu", "num_samples": 3}]})
    )
    by_results = parse_evaluation(
        {**full.raw, "benchmarks": [], "results": [{"benchmark": "mmlu"}]}
    )
    assert m.matches(by_results)
