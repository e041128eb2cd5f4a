"""DataFrame builders: long results, one row per evaluation (paging a client), compare."""

from __future__ import annotations

import math
import threading
from typing import Any

import anyio
import pandas as pd
import pytest

from scaimind_nb import (
    ScaimindValueError,
    aevaluations_frame,
    compare,
    evaluations_frame,
    parse_evaluation,
    results_frame,
)
from scaimind_nb._frames import _RECORDS, LISTING_COLUMNS


def _ev(eid: str, ckpt: str, acc: float, *, status: str = "COMPLETED") -> object:
    return parse_evaluation(
        {
            "data": {
                "evaluation_id": eid,
                "job_id": "job_1",
                "model_uri": "scaidrive://o/m",
                "checkpoint_id": ckpt,
                "status": status,
                "created_at": "2026-11-26T10:00:00-02:00",
                "results": [
                    {
                        "benchmark": "mmlu",
                        "metrics": {"accuracy": acc, "f1": 0.5},
                        "stderr": {"accuracy": 0.01},
                        "num_samples": "100",
                    },
                    {"benchmark": "humaneval", "score": acc / 2},
                ],
            }
        }
    )


def test_results_frame_columns_dtypes_and_attrs() -> None:
    evs = [_ev("e1", "c1", 0.6), _ev("e2", "c2", 0.8)]
    df = results_frame(evs)
    assert list(df.columns) == [
        "evaluation_id",
        "job_id",
        "model_uri",
        "checkpoint_id",
        "status",
        "benchmark",
        "metric",
        "value",
        "stderr",
        "num_samples",
        "created_at",
    ]
    assert len(df) == 6
    assert df["value"].dtype == "float64" and df["stderr"].dtype == "float64"
    assert str(df["num_samples"].dtype) == "Int64"
    assert str(df["created_at"].dtype) == "datetime64[ns, UTC]"
    assert df["created_at"].iloc[0] == pd.Timestamp("2026-11-26T12:00:00Z")
    assert df.attrs["evaluation_ids"] == ["e1", "e2"]
    row = df[(df.evaluation_id == "e2") & (df.metric == "accuracy")].iloc[0]
    assert (row.value, row.stderr, row.num_samples, str(row.status)) == (
        0.8,
        0.01,
        100,
        "COMPLETED",
    )
    he = df[(df.benchmark == "humaneval") & (df.evaluation_id == "e1")].iloc[0]
    assert (
        he.metric == "score"
        and he.value == 0.3
        and pd.isna(he.num_samples)
        and math.isnan(he.stderr)
    )
    one = evs[0].to_frame()
    assert len(one) == 3 and one.attrs["evaluation_ids"] == ["e1"]


def test_results_frame_empty() -> None:
    df = results_frame([])
    assert (
        len(df) == 0 and df["value"].dtype == "float64" and str(df["num_samples"].dtype) == "Int64"
    )


def test_compare_labels_by_checkpoint_or_id() -> None:
    evs = [
        _ev("e1", "step-1", 0.6),
        _ev("e2", "step-2", 0.8),
        _ev("e3", "", 0.7),
        _ev("e4", "dup", 0.1),
        _ev("e5", "dup", 0.2),
    ]
    df = compare(evs)
    assert list(df.columns) == ["step-1", "step-2", "e3", "e4", "e5"]
    assert list(df.index) == ["mmlu", "humaneval"]
    assert df.loc["mmlu", "step-2"] == 0.8 and df.loc["humaneval", "step-1"] == 0.3
    f1 = compare(evs, metric="f1")
    assert f1.loc["mmlu", "e3"] == 0.5 and list(f1.index) == ["mmlu"]
    assert df.attrs["evaluation_ids"] == ["e1", "e2", "e3", "e4", "e5"]
    # the coordinator's rendering carries stderr and n: the interval is Wilson on n=100
    row = df.stats.set_index(["benchmark", "evaluation"]).loc[("mmlu", "step-2")]
    assert (row["n"], row["ci_method"]) == (100, "wilson")


def _listed(fake: Any, n: int, status: str = "COMPLETED") -> None:
    """n evaluations whose listing items are job records and whose GET is the full record."""
    for i in range(n):
        fake.add(
            {
                "evaluation_id": f"eval_{i}",
                "job_id": "job_1",
                "model_uri": f"scaidrive://o/m{i}",
                "checkpoint_id": f"step-{i}",
                "status": status,
                "error": {"message": "OOM"} if status == "FAILED" else None,
                "results": [
                    {
                        "benchmark": "mmlu",
                        "primary_metric": "accuracy",
                        "metrics": {"accuracy": i / 10},
                    }
                ],
            },
            age=i,
        )


def test_evaluations_frame_from_an_iterable() -> None:
    df = evaluations_frame([_ev("e1", "c1", 0.6), _ev("e2", "c2", 0.8, status="FAILED")])
    assert list(df.columns) == [*LISTING_COLUMNS, "score:mmlu", "score:humaneval"]
    assert list(df["evaluation_id"]) == ["e1", "e2"]
    assert list(df["score:mmlu"]) == [0.6, 0.8]
    assert list(df["status"].astype(str)) == ["COMPLETED", "FAILED"]


def test_evaluations_frame_fetches_what_the_listing_lacks(make_client, fake: Any) -> None:
    _RECORDS.clear()
    _listed(fake, 3)
    fake.add(
        {
            "evaluation_id": "eval_f",
            "job_id": "job_2",
            "model_uri": "scaidrive://o/x",
            "status": "FAILED",
            "error": {"message": "CUDA out of memory"},
        },
        age=-1,
    )
    df = evaluations_frame(make_client(), page_size=2)
    assert list(df["evaluation_id"]) == ["eval_f", "eval_0", "eval_1", "eval_2"]
    rows = df.set_index("evaluation_id")
    assert rows.at["eval_1", "model_uri"] == "scaidrive://o/m1"
    assert rows.at["eval_1", "checkpoint_id"] == "step-1"
    assert rows.at["eval_1", "score:mmlu"] == 0.1
    assert rows.at["eval_f", "error"] == "CUDA out of memory" and pd.isna(
        rows.at["eval_f", "score:mmlu"]
    )
    assert str(df["status"].dtype) == "category" and str(df["score:mmlu"].dtype) == "float64"
    assert str(df["created_at"].dtype) == "datetime64[ns, UTC]"
    assert str(df["model_uri"].dtype) == "string"
    assert len(fake.calls("GET", "/evaluations")) == 2  # two listing pages
    assert len([r for r in fake.calls("GET") if "/evaluations/" in r.url.path]) == 4


def test_ended_records_are_cached_running_ones_fetched_again(make_client, fake: Any) -> None:
    _RECORDS.clear()
    _listed(fake, 2)
    fake.add(
        {
            "evaluation_id": "eval_r",
            "job_id": "job_1",
            "model_uri": "scaidrive://o/r",
            "status": "RUNNING",
        }
    )
    client = make_client()
    evaluations_frame(client)
    before = len(fake.requests)
    evaluations_frame(client)
    details = [r.url.path for r in fake.requests[before:] if "/evaluations/" in r.url.path]
    assert details == ["/v1/modules/scaimind/evaluations/eval_r"]


def test_detail_fetches_run_concurrently_and_bounded(make_client, fake: Any) -> None:
    _RECORDS.clear()
    _listed(fake, 9)
    client = make_client()
    barrier = threading.Barrier(3, timeout=30)
    lock = threading.Lock()
    flight = {"now": 0, "max": 0}
    get = client.get

    def held_get(evaluation_id: str) -> Any:
        with lock:
            flight["now"] += 1
            flight["max"] = max(flight["max"], flight["now"])
        barrier.wait()  # passes only when three GETs are in flight at once
        try:
            return get(evaluation_id)
        finally:
            with lock:
                flight["now"] -= 1

    client.get = held_get  # type: ignore[method-assign]
    df = evaluations_frame(client, concurrency=3)
    assert len(df) == 9 and flight["max"] == 3 and df["model_uri"].notna().all()


def test_aevaluations_frame_is_the_async_twin(make_async_client, fake: Any) -> None:
    _RECORDS.clear()
    _listed(fake, 3)

    async def main() -> Any:
        async with make_async_client() as client:
            return await aevaluations_frame(client, page_size=2)

    df = anyio.run(main)
    assert list(df.columns) == [*LISTING_COLUMNS, "score:mmlu"]
    assert list(df["checkpoint_id"]) == ["step-0", "step-1", "step-2"]


def test_the_bounded_cache_drops_the_least_recently_used() -> None:
    from scaimind_nb._frames import BoundedCache

    cache: BoundedCache[str, int] = BoundedCache(2)
    cache.store("a", 1)
    cache.store("b", 2)
    assert cache.lookup("a") == 1  # a is now the most recently used
    cache.store("c", 3)
    assert (cache.lookup("a"), cache.lookup("b"), cache.lookup("c")) == (1, None, 3)
    assert len(cache) == 2


def test_evaluations_frame_refuses_an_async_client_in_one_line(make_async_client) -> None:
    with pytest.raises(ScaimindValueError, match=r"await scaimind_nb\.aevaluations_frame"):
        evaluations_frame(make_async_client())
