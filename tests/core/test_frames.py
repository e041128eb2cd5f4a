"""DataFrame builders: long results, one row per evaluation (paging a client), compare."""

from __future__ import annotations

import math

import pandas as pd

from scaimind_nb import compare, evaluations_frame, parse_evaluation, results_frame

from ._fakes import FakeCoordinator


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
    assert compare(evs, metric="f1").loc["mmlu", "e3"] == 0.5
    assert math.isnan(compare(evs, metric="f1").loc["humaneval", "e3"])
    assert df.attrs["evaluation_ids"] == ["e1", "e2", "e3", "e4", "e5"]


def test_evaluations_frame_from_iterable_and_client(make_client, fake: FakeCoordinator) -> None:
    df = evaluations_frame([_ev("e1", "c1", 0.6), _ev("e2", "c2", 0.8, status="FAILED")])
    assert list(df["evaluation_id"]) == ["e1", "e2"]
    assert list(df["score:mmlu"]) == [0.6, 0.8]
    assert list(df["status"].astype(str)) == ["COMPLETED", "FAILED"]
    for i in range(5):
        fake.add({"evaluation_id": f"eval_{i}", "job_id": "job_1", "status": "RUNNING"}, age=i)
    df = evaluations_frame(make_client(), limit=3, page_size=2)
    assert list(df["evaluation_id"]) == ["eval_0", "eval_1", "eval_2"]
    assert list(df["job_id"]) == ["job_1"] * 3
    assert str(df["created_at"].dtype) == "datetime64[ns, UTC]"
    assert df.attrs["evaluation_ids"] == ["eval_0", "eval_1", "eval_2"]
    assert len(fake.calls("GET")) == 2
