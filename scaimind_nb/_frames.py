"""pandas DataFrames of evaluations: long results, one row per evaluation, benchmark comparison."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ._errors import ScaimindError
from ._models import Evaluation, Status

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["compare", "evaluations_frame", "results_frame"]

RESULT_COLUMNS = (
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
)
_STATUS_CATEGORIES = [s.value for s in Status]
_STATUS_CODE = {s: i for i, s in enumerate(Status)}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAT = -(2**63)


def _as_evaluations(evaluations: Iterable[Any]) -> list[Evaluation]:
    """Evaluations from Evaluations or handles with an ``.evaluation`` (e.g. EvaluationRun)."""
    out = []
    for ev in evaluations:
        ev = ev if isinstance(ev, Evaluation) else getattr(ev, "evaluation", ev)
        if not isinstance(ev, Evaluation):
            raise TypeError(f"expected Evaluation objects, got {type(ev).__name__}")
        out.append(ev)
    return out


def _ns(dt: datetime | None) -> int:
    if dt is None:
        return _NAT
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def _times(values: list[int]) -> Any:
    import numpy as np
    import pandas as pd

    return pd.DatetimeIndex(np.asarray(values, dtype="int64").view("M8[ns]")).tz_localize("UTC")


def _statuses(codes: list[int]) -> Any:
    import pandas as pd

    return pd.Categorical.from_codes(codes, categories=pd.Index(_STATUS_CATEGORIES))


def results_frame(evaluations: Iterable[Evaluation]) -> pd.DataFrame:
    """Long format: one row per evaluation x benchmark x metric, exactly the metrics each result reports."""
    import numpy as np
    import pandas as pd

    evs = _as_evaluations(evaluations)
    ids: list[str] = []
    jobs: list[str | None] = []
    models: list[str | None] = []
    ckpts: list[str] = []
    status: list[int] = []
    created: list[int] = []
    bench: list[str] = []
    metric: list[str] = []
    value: list[float] = []
    err: list[float] = []
    nsamp: list[int] = []
    nan = float("nan")
    for ev in evs:
        start = len(bench)
        for r in ev.results:
            se = r.stderr
            n = r.num_samples if r.num_samples is not None else -1
            for name, v in r.metrics.items():
                bench.append(r.benchmark)
                metric.append(name)
                value.append(v)
                err.append(se.get(name, nan))
            nsamp.extend(itertools.repeat(n, len(bench) - len(nsamp)))
        rows = len(bench) - start
        if rows:
            ids.extend(itertools.repeat(ev.evaluation_id, rows))
            jobs.extend(itertools.repeat(ev.job_id, rows))
            models.extend(itertools.repeat(ev.model_uri, rows))
            ckpts.extend(itertools.repeat(ev.checkpoint_id, rows))
            status.extend(itertools.repeat(_STATUS_CODE[ev.status], rows))
            created.extend(itertools.repeat(_ns(ev.created_at), rows))
    n_arr = np.asarray(nsamp, dtype="int64")
    df = pd.DataFrame(
        {
            "evaluation_id": ids,
            "job_id": jobs,
            "model_uri": models,
            "checkpoint_id": ckpts,
            "status": _statuses(status),
            "benchmark": bench,
            "metric": metric,
            "value": np.asarray(value, dtype="float64"),
            "stderr": np.asarray(err, dtype="float64"),
            "num_samples": pd.arrays.IntegerArray(n_arr, n_arr < 0),
            "created_at": _times(created),
        },
        columns=list(RESULT_COLUMNS),
    )
    df.attrs["evaluation_ids"] = [ev.evaluation_id for ev in evs]
    return df


def _primary(ev: Evaluation, benchmark: str, metric: str | None) -> float:
    try:
        return ev.score(benchmark, metric)
    except (KeyError, ScaimindError):
        return float("nan")


def evaluations_frame(
    source: Any, *, limit: int | None = None, page_size: int = 100
) -> pd.DataFrame:
    """One row per evaluation from a Client (paging through the listing) or an iterable of Evaluations.

    Besides the record fields, each benchmark with a result gets a ``score:<benchmark>`` column
    holding its primary metric.
    """
    import pandas as pd

    if hasattr(source, "iter_evaluations"):
        items: Iterable[Any] = source.iter_evaluations(page_size=page_size, limit=limit)
    else:
        items = itertools.islice(source, limit) if limit is not None else source
    evs = _as_evaluations(items)
    names = list(dict.fromkeys(r.benchmark for ev in evs for r in ev.results))
    data: dict[str, Any] = {
        "evaluation_id": [ev.evaluation_id for ev in evs],
        "job_id": [ev.job_id for ev in evs],
        "model_uri": [ev.model_uri for ev in evs],
        "checkpoint_id": [ev.checkpoint_id for ev in evs],
        "status": _statuses([_STATUS_CODE[ev.status] for ev in evs]),
        "benchmarks": [
            ",".join(b.name for b in ev.benchmarks) or ",".join(r.benchmark for r in ev.results)
            for ev in evs
        ],
        "error": [ev.error for ev in evs],
        "created_at": _times([_ns(ev.created_at) for ev in evs]),
        "updated_at": _times([_ns(ev.updated_at) for ev in evs]),
    }
    for name in names:
        data[f"score:{name}"] = pd.array([_primary(ev, name, None) for ev in evs], dtype="float64")
    df = pd.DataFrame(data)
    df.attrs["evaluation_ids"] = list(data["evaluation_id"])
    return df


def compare(evaluations: Iterable[Evaluation], metric: str | None = None) -> pd.DataFrame:
    """Benchmarks as rows, one column per evaluation labelled by checkpoint (or id when missing/duplicated)."""
    import pandas as pd

    evs = _as_evaluations(evaluations)
    ckpts = [ev.checkpoint_id for ev in evs]
    labels = [
        c if c and ckpts.count(c) == 1 else ev.evaluation_id
        for c, ev in zip(ckpts, evs, strict=True)
    ]
    benchmarks = list(dict.fromkeys(r.benchmark for ev in evs for r in ev.results))
    df = pd.DataFrame(
        {
            label: [_primary(ev, b, metric) for b in benchmarks]
            for label, ev in zip(labels, evs, strict=True)
        },
        index=pd.Index(benchmarks, name="benchmark"),
        columns=labels,
        dtype="float64",
    )
    df.columns.name = "evaluation"
    df.attrs["evaluation_ids"] = [ev.evaluation_id for ev in evs]
    df.attrs["metric"] = metric
    return df
