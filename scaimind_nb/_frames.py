"""pandas DataFrames of evaluations: long results, listings, comparisons, per-item samples, diffs."""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from ._errors import NotFoundError, SamplesNotAvailableError, ScaimindKeyError, ScaimindValueError
from ._models import Evaluation, Status

if TYPE_CHECKING:
    import pandas as pd

    from ._async_client import AsyncClient
    from ._client import Client
    from ._models import BenchmarkResult, Sample
    from ._views import ComparisonFrame
    from .stats import ItemOutcomes

__all__ = [
    "aevaluations_frame",
    "compare",
    "diff",
    "evaluations_frame",
    "results_frame",
    "samples",
]

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
LISTING_COLUMNS = (
    "evaluation_id",
    "job_id",
    "model_uri",
    "checkpoint_id",
    "status",
    "error",
    "created_at",
    "updated_at",
    "benchmarks",
)
"""The columns of `evaluations_frame`, followed by one `score:<benchmark>` column per benchmark."""
SAMPLE_COLUMNS = (
    "evaluation_id",
    "benchmark",
    "item_id",
    "score",
    "correct",
    "cluster",
    "prompt",
    "answer",
    "reference",
    "record",
)
DIFF_COLUMNS = (
    "item_id",
    "change",
    "score_a",
    "score_b",
    "prompt",
    "answer_a",
    "answer_b",
    "reference",
)
DETAIL_CONCURRENCY = 8
"""Full records fetched at once when a listing lacks them."""
_STATUS_CATEGORIES = [s.value for s in Status]
_STATUS_CODE = {s: i for i, s in enumerate(Status)}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAT = -(2**63)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(dict[K, V]):
    """A thread-safe LRU mapping of at most `maxsize` entries (the least recently used go first)."""

    def __init__(self, maxsize: int) -> None:
        super().__init__()
        self.maxsize = maxsize
        self._order: OrderedDict[K, None] = OrderedDict()
        self._lock = threading.Lock()

    def lookup(self, key: K) -> V | None:
        with self._lock:
            if key not in self:
                return None
            self._order.move_to_end(key)
            return self[key]

    def store(self, key: K, value: V) -> None:
        with self._lock:
            self[key] = value
            self._order[key] = None
            self._order.move_to_end(key)
            while len(self._order) > self.maxsize:
                old, _ = self._order.popitem(last=False)
                del self[old]


_RECORDS: BoundedCache[tuple[str, str], Evaluation] = BoundedCache(4096)
"""Full records of ended evaluations by (host, id): they no longer change."""
_SAMPLES: BoundedCache[tuple[str, str], tuple[Sample, ...]] = BoundedCache(32)
"""Per-item records of ended evaluations by (host, id); an MMLU run holds 14,042 of them."""


def _as_evaluations(evaluations: Iterable[Any]) -> list[Evaluation]:
    """Evaluations from Evaluations or handles with an ``.evaluation`` (e.g. EvaluationRun)."""
    out = []
    for ev in evaluations:
        ev = ev if isinstance(ev, Evaluation) else getattr(ev, "evaluation", ev)
        if not isinstance(ev, Evaluation):
            raise ScaimindValueError(
                f"expected Evaluation or EvaluationRun objects, got {type(ev).__name__}"
            )
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


# ----------------------------------------------------------------------------- listings


def _score_or_nan(ev: Evaluation, benchmark: str, metric: str | None = None) -> float:
    """The score of `benchmark`, NaN where the evaluation has no such result or metric."""
    try:
        return ev.score(benchmark, metric)
    except ScaimindKeyError:
        return math.nan


def _lacks_details(ev: Evaluation) -> bool:
    """Whether a listing item needs a GET: listings are job records without model or results."""
    if not ev.model_uri:
        return True
    if ev.status is Status.COMPLETED:
        return not ev.results
    return not (ev.results or ev.benchmarks)


def _plan(items: list[Evaluation], host: str) -> list[int]:
    """Fill `items` from the record cache in place; the indices that still need a GET."""
    missing = []
    for i, ev in enumerate(items):
        if not _lacks_details(ev):
            continue
        cached = _RECORDS.lookup((host, ev.evaluation_id))
        if cached is not None:
            items[i] = cached
        else:
            missing.append(i)
    return missing


def _keep(host: str, ev: Evaluation) -> Evaluation:
    if ev.is_terminal:
        _RECORDS.store((host, ev.evaluation_id), ev)
    return ev


def _listing_frame(evs: list[Evaluation]) -> pd.DataFrame:
    import pandas as pd

    names = list(
        dict.fromkeys(
            name
            for ev in evs
            for name in itertools.chain(
                (b.name for b in ev.benchmarks), (r.benchmark for r in ev.results)
            )
        )
    )
    data: dict[str, Any] = {
        "evaluation_id": pd.array([ev.evaluation_id for ev in evs], dtype="string"),
        "job_id": pd.array([ev.job_id for ev in evs], dtype="string"),
        "model_uri": pd.array([ev.model_uri for ev in evs], dtype="string"),
        "checkpoint_id": pd.array([ev.checkpoint_id or None for ev in evs], dtype="string"),
        "status": _statuses([_STATUS_CODE[ev.status] for ev in evs]),
        "error": pd.array([ev.error for ev in evs], dtype="string"),
        "created_at": _times([_ns(ev.created_at) for ev in evs]),
        "updated_at": _times([_ns(ev.updated_at) for ev in evs]),
        "benchmarks": pd.array(
            [
                ",".join(
                    dict.fromkeys(
                        [b.name for b in ev.benchmarks] + [r.benchmark for r in ev.results]
                    )
                )
                or None
                for ev in evs
            ],
            dtype="string",
        ),
    }
    for name in names:
        data[f"score:{name}"] = pd.array([_score_or_nan(ev, name) for ev in evs], dtype="float64")
    df = pd.DataFrame(data)
    df.attrs["evaluation_ids"] = [ev.evaluation_id for ev in evs]
    return df


def evaluations_frame(
    source: Client | Iterable[Any],
    *,
    limit: int | None = None,
    page_size: int = 100,
    concurrency: int = DETAIL_CONCURRENCY,
) -> pd.DataFrame:
    """One row per evaluation: model, checkpoint, status, failure reason, times, each benchmark's score.

    From a Client it pages through the listing newest first and, since listing items are job
    records without model or results, fetches the full records it lacks (`concurrency` at a
    time; records of ended evaluations are cached by id). With an AsyncClient use
    ``await aevaluations_frame(client)``. Columns: LISTING_COLUMNS, then ``score:<benchmark>``
    (float64, the primary metric) per benchmark.
    """
    if hasattr(source, "aclose"):
        raise ScaimindValueError(
            "evaluations_frame needs a Client; with an AsyncClient use "
            "`await scaimind_nb.aevaluations_frame(client)`"
        )
    if not hasattr(source, "iter_evaluations"):
        items = itertools.islice(source, limit) if limit is not None else source
        return _listing_frame(_as_evaluations(items))
    client: Client = source  # type: ignore[assignment]
    evs = list(client.iter_evaluations(page_size=page_size, limit=limit))
    missing = _plan(evs, client.host)
    if missing:
        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(missing)))) as pool:
            fetched = pool.map(lambda i: _fetch(client.get, evs[i]), missing)
            for i, ev in zip(missing, fetched, strict=True):
                evs[i] = _keep(client.host, ev)
    return _listing_frame(evs)


def _fetch(get: Callable[[str], Evaluation], item: Evaluation) -> Evaluation:
    try:
        return get(item.evaluation_id)
    except NotFoundError:  # deleted since it was listed: keep what the listing said
        return item


async def aevaluations_frame(
    client: AsyncClient,
    *,
    limit: int | None = None,
    page_size: int = 100,
    concurrency: int = DETAIL_CONCURRENCY,
) -> pd.DataFrame:
    """`evaluations_frame` for an AsyncClient: the same columns, records fetched concurrently."""
    import anyio

    evs = [ev async for ev in client.iter_evaluations(page_size=page_size, limit=limit)]
    missing = _plan(evs, client.host)
    limiter = anyio.CapacityLimiter(max(1, concurrency))

    async def fill(i: int) -> None:
        async with limiter:
            with contextlib.suppress(NotFoundError):  # deleted since it was listed
                evs[i] = _keep(client.host, await client.get(evs[i].evaluation_id))

    async with anyio.create_task_group() as group:
        for i in missing:
            group.start_soon(fill, i)
    return _listing_frame(evs)


# ----------------------------------------------------------------------------- per-item results


def _source(run: Any, client: Client | None) -> tuple[Client, str, bool]:
    """(client, evaluation id, ended?) of an EvaluationRun, an Evaluation or an id."""
    if isinstance(run, str):
        evaluation_id, ended = run, False
    else:
        ev = run if isinstance(run, Evaluation) else getattr(run, "evaluation", None)
        if not isinstance(ev, Evaluation):
            raise ScaimindValueError(
                f"expected an EvaluationRun, an Evaluation or an evaluation id, got {type(run).__name__}"
            )
        evaluation_id, ended = ev.evaluation_id, ev.is_terminal
        client = client or getattr(run, "client", None)
    if client is None:
        from ._evaluate import default_client

        client = default_client()
    return client, evaluation_id, ended


def _samples_of(
    client: Client, evaluation_id: str, benchmark: str | None, ended: bool
) -> tuple[Sample, ...]:
    """An evaluation's per-item records (of `benchmark`), fetched once when it has ended."""
    key = (client.host, evaluation_id)
    items = _SAMPLES.lookup(key)
    if items is None:
        items = tuple(client.samples(evaluation_id))
        if ended:
            _SAMPLES.store(key, items)
    return items if benchmark is None else tuple(s for s in items if s.benchmark == benchmark)


PROMPT_FIELDS = ("prompt", "question", "input")
ANSWER_FIELDS = ("completion", "prediction", "reply", "response")
REFERENCE_FIELDS = ("reference", "target", "answer", "expected")


def item_text(record: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(prompt, answer, reference) of a stored per-item record, whatever the benchmark calls them.

    custom-* stores prompt, completion and reference; mmlu the question, the predicted and the
    right letter; humaneval the completion (its verdict stays in `record`).
    """

    def first(fields: Sequence[str]) -> str | None:
        for name in fields:
            value = record.get(name)
            if value is not None:
                return value if isinstance(value, str) else str(value)
        return None

    return first(PROMPT_FIELDS), first(ANSWER_FIELDS), first(REFERENCE_FIELDS)


def samples(
    run: Any, benchmark: str | None = None, *, client: Client | None = None
) -> pd.DataFrame:
    """The per-item results of one evaluation (one benchmark if given), one row per sample.

    `run` is an EvaluationRun, an Evaluation or an evaluation id (then `client`, or the shared
    client, is asked). Columns: SAMPLE_COLUMNS; `record` keeps all the coordinator stored.
    Raises SamplesNotAvailableError when the coordinator keeps no per-item records.
    """
    import pandas as pd

    client, evaluation_id, ended = _source(run, client)
    items = _samples_of(client, evaluation_id, benchmark, ended)
    texts = [item_text(s.record) for s in items]
    df = pd.DataFrame(
        {
            "evaluation_id": pd.array([evaluation_id] * len(items), dtype="string"),
            "benchmark": pd.array([s.benchmark for s in items], dtype="string"),
            "item_id": pd.array([s.item_id for s in items], dtype="string"),
            "score": pd.array([s.score for s in items], dtype="Float64"),
            "correct": pd.array([s.correct for s in items], dtype="boolean"),
            "cluster": pd.array([s.cluster for s in items], dtype="string"),
            "prompt": pd.array([t[0] for t in texts], dtype="string"),
            "answer": pd.array([t[1] for t in texts], dtype="string"),
            "reference": pd.array([t[2] for t in texts], dtype="string"),
            "record": pd.Series([s.record for s in items], dtype="object"),
        },
        columns=list(SAMPLE_COLUMNS),
    )
    df.attrs["evaluation_id"] = evaluation_id
    return df


def _one_benchmark(a: set[str], b: set[str], benchmark: str | None) -> str:
    common = sorted(a & b)
    if benchmark is not None:
        if benchmark not in common:
            raise ScaimindKeyError(
                f"both evaluations need per-item results of {benchmark!r}; "
                f"they share: {', '.join(common) or 'none'}"
            )
        return benchmark
    if len(common) != 1:
        raise ScaimindValueError(
            f"pass benchmark=: the two evaluations share {', '.join(common) or 'no benchmark'}"
        )
    return common[0]


def _label(run: Any) -> str:
    ev = run if isinstance(run, Evaluation) else getattr(run, "evaluation", None)
    if isinstance(ev, Evaluation):
        return ev.checkpoint_id or ev.evaluation_id
    return str(run)


def diff(
    run_a: Any, run_b: Any, benchmark: str | None = None, *, client: Client | None = None
) -> pd.DataFrame:
    """The items whose outcome changed from `run_a` to `run_b`: regressions first, then fixes.

    Columns: DIFF_COLUMNS (``change`` is ``broken`` when b scores lower, ``fixed`` when higher);
    an item's score is the mean of its samples, its texts are its first sample's. ``attrs`` name
    both sides and count the items compared and those only one side scored. `benchmark` may be
    left out when the two share exactly one.
    """
    import pandas as pd

    from .stats import ItemOutcomes

    sides = []
    for run in (run_a, run_b):
        source_client, evaluation_id, ended = _source(run, client)
        sides.append(_samples_of(source_client, evaluation_id, None, ended))
    name = _one_benchmark(
        {s.benchmark for s in sides[0]}, {s.benchmark for s in sides[1]}, benchmark
    )
    a, b = ([s for s in side if s.benchmark == name] for side in sides)
    out_a, out_b = ItemOutcomes.from_samples(a), ItemOutcomes.from_samples(b)
    first_a: dict[str, Sample] = {}
    first_b: dict[str, Sample] = {}
    for items, first in ((a, first_a), (b, first_b)):
        for sample in items:
            first.setdefault(sample.item_id, sample)
    both = set(out_a.scores) & set(out_b.scores)
    rows = []
    for item in sorted(both):
        sa, sb = out_a.scores[item], out_b.scores[item]
        if sa == sb:
            continue
        prompt, answer_a, reference = item_text(first_a[item].record)
        prompt_b, answer_b, reference_b = item_text(first_b[item].record)
        rows.append(
            {
                "item_id": item,
                "change": "broken" if sb < sa else "fixed",
                "score_a": sa,
                "score_b": sb,
                "prompt": prompt or prompt_b,
                "answer_a": answer_a,
                "answer_b": answer_b,
                "reference": reference or reference_b,
            }
        )
    rows.sort(key=lambda r: (r["change"] != "broken", r["item_id"]))
    df = pd.DataFrame(rows, columns=list(DIFF_COLUMNS)).astype(DIFF_DTYPES)
    df.attrs.update(
        a=_label(run_a),
        b=_label(run_b),
        benchmark=name,
        compared=len(both),
        only_a=len(set(out_a.scores) - both),
        only_b=len(set(out_b.scores) - both),
    )
    return df


DIFF_DTYPES = {
    "item_id": "string",
    "change": "string",
    "score_a": "float64",
    "score_b": "float64",
    "prompt": "string",
    "answer_a": "string",
    "answer_b": "string",
    "reference": "string",
}


# ----------------------------------------------------------------------------- compare


def _labels(evs: Sequence[Evaluation]) -> list[str]:
    """Column labels: the checkpoint, or the id where it is missing or shared."""
    ckpts = [ev.checkpoint_id for ev in evs]
    return [
        c if c and ckpts.count(c) == 1 else ev.evaluation_id
        for c, ev in zip(ckpts, evs, strict=True)
    ]


def _baseline_index(
    baseline: Any, runs: Sequence[Any], evs: Sequence[Evaluation], labels: Sequence[str]
) -> int:
    if baseline is None:
        return 0
    if isinstance(baseline, int) and not isinstance(baseline, bool) and 0 <= baseline < len(evs):
        return baseline
    for i, (run, ev, label) in enumerate(zip(runs, evs, labels, strict=True)):
        if baseline is run or baseline is ev or baseline in (label, ev.evaluation_id):
            return i
        if isinstance(baseline, Evaluation) and baseline.evaluation_id == ev.evaluation_id:
            return i
    raise ScaimindValueError(
        f"baseline {baseline!r} is none of the compared evaluations: {', '.join(labels)}"
    )


def _has_metric(result: BenchmarkResult, metric: str | None) -> bool:
    """Whether `result` has `metric` (any result counts for the primary metric: NaN if none)."""
    if metric is None:
        return True
    try:
        result.metric_name(metric)
    except ScaimindKeyError:
        return False
    return True


def _check_metric(evs: Sequence[Evaluation], metric: str | None) -> None:
    """An unknown metric is an error listing the metrics (not a table of NaN)."""
    results = [r for ev in evs for r in ev.results]
    if metric is None or any(_has_metric(r, metric) for r in results):
        return
    have = sorted({m for r in results for m in r.metrics})
    raise ScaimindKeyError(
        f"no result has a metric {metric!r}; available: {', '.join(have) or 'none'}"
    )


def _outcomes(client: Client | None, ev: Evaluation, benchmark: str) -> ItemOutcomes | None:
    """Per-item outcomes of one benchmark for pairing, None where the coordinator keeps none."""
    from .stats import ItemOutcomes

    if client is None:
        return None
    try:
        items = _samples_of(client, ev.evaluation_id, benchmark, ev.is_terminal)
    except SamplesNotAvailableError:
        return None
    outcomes = ItemOutcomes.from_samples(items)
    return outcomes if outcomes.n else None


def _pairs_on_items(result: BenchmarkResult, metric: str | None) -> bool:
    """Per-item outcomes are outcomes of the primary metric: pair only on that one."""
    try:
        return metric is None or result.metric_name(metric) == result.primary_metric
    except ScaimindKeyError:
        return False


def compare(
    evaluations: Iterable[Any],
    metric: str | None = None,
    *,
    baseline: Any = None,
    confidence: float = 0.95,
    client: Client | None = None,
) -> ComparisonFrame:
    """Benchmarks x evaluations of scores, with n, intervals and the difference to a baseline.

    The frame's values are the scores (columns labelled by checkpoint, or id where that is
    missing or shared), so ``.loc``/``idxmax`` work as on any frame; ``.stats`` is the long table
    behind its display: per benchmark and evaluation the metric, score, n, the interval (Wilson
    for proportions, else normal from the reported standard error: the gates' rule), and against
    the `baseline` (the first evaluation unless given: an index, label, id, Evaluation or run)
    the difference with its interval, paired on per-item outcomes where both evaluations have
    them for the same items (`client`, or each run's own client, fetches them), unpaired
    otherwise. ``significant`` marks differences whose interval excludes zero. An unknown
    `metric` raises ScaimindKeyError listing the metrics.
    """
    import pandas as pd

    from . import stats
    from ._views import ComparisonFrame

    stats.z_value(confidence)  # a bad confidence is refused before any request
    runs = list(evaluations)
    evs = _as_evaluations(runs)
    _check_metric(evs, metric)
    labels = _labels(evs)
    base = _baseline_index(baseline, runs, evs, labels) if evs else 0
    clients = [client or getattr(run, "client", None) for run in runs]
    benchmarks = list(
        dict.fromkeys(r.benchmark for ev in evs for r in ev.results if _has_metric(r, metric))
    )
    rows: list[dict[str, Any]] = []
    for bench in benchmarks:
        base_result = _result(evs[base], bench)
        base_items: ItemOutcomes | None = None
        if base_result is not None and len(evs) > 1 and _pairs_on_items(base_result, metric):
            base_items = _outcomes(clients[base], evs[base], bench)
        for i, (ev, label) in enumerate(zip(evs, labels, strict=True)):
            result = _result(ev, bench)
            row = _score_row(bench, ev, label, result, metric, confidence)
            row["baseline"] = labels[base]
            if i != base and result is not None and base_result is not None:
                items = None
                if base_items is not None and _pairs_on_items(result, metric):
                    items = _outcomes(clients[i], ev, bench)
                row.update(_delta(base_result, result, metric, confidence, base_items, items))
            rows.append(row)
    table = pd.DataFrame(rows, columns=list(STATS_COLUMNS))
    table = table.astype(STATS_DTYPES)
    scores = pd.DataFrame(
        {
            label: [_score_or_nan(ev, b, metric) for b in benchmarks]
            for label, ev in zip(labels, evs, strict=True)
        },
        index=pd.Index(benchmarks, name="benchmark"),
        columns=labels,
        dtype="float64",
    )
    scores.columns.name = "evaluation"
    frame = ComparisonFrame(scores)
    frame.stats = table
    frame.attrs.update(
        evaluation_ids=[ev.evaluation_id for ev in evs],
        metric=metric,
        baseline=labels[base] if evs else None,
        confidence=confidence,
    )
    return frame


STATS_COLUMNS = (
    "benchmark",
    "evaluation",
    "evaluation_id",
    "metric",
    "score",
    "n",
    "ci_low",
    "ci_high",
    "ci_method",
    "baseline",
    "delta",
    "delta_low",
    "delta_high",
    "delta_method",
    "paired",
    "significant",
)
STATS_DTYPES = {
    "benchmark": "string",
    "evaluation": "string",
    "evaluation_id": "string",
    "metric": "string",
    "score": "float64",
    "n": "Int64",
    "ci_low": "float64",
    "ci_high": "float64",
    "ci_method": "string",
    "baseline": "string",
    "delta": "float64",
    "delta_low": "float64",
    "delta_high": "float64",
    "delta_method": "string",
    "paired": "boolean",
    "significant": "boolean",
}


def _result(ev: Evaluation, benchmark: str) -> BenchmarkResult | None:
    try:
        return ev.result(benchmark)
    except ScaimindKeyError:
        return None


def _score_row(
    bench: str,
    ev: Evaluation,
    label: str,
    result: BenchmarkResult | None,
    metric: str | None,
    confidence: float,
) -> dict[str, Any]:
    from . import stats

    row: dict[str, Any] = {
        "benchmark": bench,
        "evaluation": label,
        "evaluation_id": ev.evaluation_id,
        "score": math.nan,
        "n": result.num_samples if result is not None else None,
    }
    if result is None:
        return row
    try:
        name = result.metric_name(metric)
    except ScaimindKeyError:
        return row
    score = result.metrics[name]
    row.update(metric=name, score=score)
    interval = stats.score_interval(
        score,
        confidence,
        n=result.num_samples,
        stderr=result.stderr_of(name),
        proportion=result.is_proportion(name),
    )
    if interval is not None:
        row.update(ci_low=interval.low, ci_high=interval.high, ci_method=interval.method)
    return row


def _delta(
    base: BenchmarkResult,
    cand: BenchmarkResult,
    metric: str | None,
    confidence: float,
    base_items: ItemOutcomes | None,
    cand_items: ItemOutcomes | None,
) -> dict[str, Any]:
    """The difference candidate - baseline with its interval (`stats.difference`, as the gates)."""
    from . import stats

    try:
        b_name, c_name = base.metric_name(metric), cand.metric_name(metric)
    except ScaimindKeyError:
        return {}
    b_score, c_score = base.metrics[b_name], cand.metrics[c_name]
    try:
        d = stats.difference(
            b_score,
            c_score,
            confidence,
            baseline_items=base_items,
            candidate_items=cand_items,
            n_baseline=base.num_samples,
            n_candidate=cand.num_samples,
            stderr_baseline=base.stderr_of(b_name),
            stderr_candidate=cand.stderr_of(c_name),
            proportion=base.is_proportion(b_name) and cand.is_proportion(c_name),
        )
    except ScaimindValueError as exc:  # neither n of a proportion nor a stderr: no interval
        return {"delta": c_score - b_score, "delta_method": f"no interval: {exc}"}
    return {
        "delta": d.delta,
        "delta_low": d.interval.low,
        "delta_high": d.interval.high,
        "delta_method": d.method,
        "paired": d.paired,
        "significant": d.interval.excludes_zero,
    }
