"""Tolerant decoding of every coordinator rendering into typed models.

Field names are matched on a case- and underscore-blind key (camelCase cannot be reversed),
keys inside maps (metric and benchmark names) are never rewritten, int64 strings, "NaN" and
whole-number doubles are coerced, and proto3 default omissions are filled in. The hot path is
dict lookups on cached keys: no regex per key and no copying of the payload.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ._errors import ProtocolError
from ._models import (
    Benchmark,
    BenchmarkProgress,
    BenchmarkResult,
    DataInfo,
    Evaluation,
    EvaluationPage,
    Precheck,
    Sample,
    SamplePage,
    SpecCheck,
    Status,
    metric_key,
)

__all__ = [
    "parse_evaluation",
    "parse_page",
    "parse_precheck",
    "parse_sample",
    "parse_sample_page",
]

NAN = float("nan")  # one shared NaN object, so equal renderings give equal dataclasses
_UTC = UTC

_EVAL_SLOTS = {
    "evaluationid": "evaluation_id",
    "evalid": "evaluation_id",
    "id": "evaluation_id",
    "jobid": "job_id",
    "parentjobid": "parent_job_id",
    "modeluri": "model_uri",
    "model": "model_uri",
    "checkpointid": "checkpoint_id",
    "checkpoint": "checkpoint_id",
    "status": "status",
    "state": "status",
    "results": "results",
    "benchmarkresults": "results",
    "benchmarks": "benchmarks",
    "progress": "progress",
    "error": "error",
    "failurereason": "error_alt",
    "statusmessage": "error_alt",
    "errormessage": "error_alt",
    "createdat": "created_at",
    "createtime": "created_at",
    "updatedat": "updated_at",
    "updatetime": "updated_at",
    "startedat": "started_at",
    "starttime": "started_at",
    "completedat": "completed_at",
    "completetime": "completed_at",
    "endtime": "completed_at",
    "labels": "labels",
    "modeldigest": "model_digest",
    "evaluation": "nested",
    "result": "nested",
}
_RESULT_SLOTS = {
    "benchmark": "name",
    "name": "name",
    "benchmarkname": "name",
    "task": "name",
    "score": "score",
    "primarymetric": "primary",
    "proportionmetrics": "proportions",
    "proportions": "proportions",
    "metrics": "metrics",
    "stderr": "stderr",
    "stderrs": "stderr",
    "numsamples": "num_samples",
    "extra": "extra",
    "result": "nested",
    "evaluation": "nested",
    "status": "status",
    "error": "error",
    "createdat": "time",
    "updatedat": "time",
    "startedat": "time",
    "completedat": "time",
}
_PAIR_NAME = frozenset({"name", "key", "metric", "metricname"})
_PAIR_VALUE = frozenset({"value", "score", "val"})
_WRAPPERS = frozenset({"metrics", "values"})
_RESULT_WRAPPERS = frozenset({"results", "benchmarkresults", "result"})

_MISS = object()
_EVAL_RAW: dict[str, Any] = {}
_RESULT_RAW: dict[str, Any] = {}


def _learn(cache: dict[str, Any], slots: dict[str, str], key: str) -> str | None:
    """Slot of a raw field name in ``slots``, remembered in ``cache`` (bounded)."""
    slot = slots.get(_k(key))
    if len(cache) < 4096:
        cache[key] = slot
    return slot


@functools.lru_cache(maxsize=4096)
def _k(key: str) -> str:
    """Case- and underscore-blind compare key of a field name (cached, bounded)."""
    return key.replace("_", "").replace("-", "").lower()


@functools.lru_cache(maxsize=4096)
def _snake(key: str) -> str:
    """snake_case spelling of an unknown field name, so camel and snake renderings agree."""
    out = []
    for i, ch in enumerate(key):
        if ch.isupper():
            if i and key[i - 1] != "_":
                out.append("_")
            out.append(ch.lower())
        else:
            out.append(ch)
    return "".join(out)


def to_float(v: Any) -> float | None:
    """A JSON number or numeric string (``"NaN"``, ``"Infinity"``, ``"1000"``) as float, else None."""
    t = type(v)
    if t is float:
        return NAN if v != v else v
    if t is int:
        return float(v)
    if t is str:
        try:
            f = float(v)
        except ValueError:
            return None
        return NAN if math.isnan(f) else f
    return None


def to_int(v: Any) -> int | None:
    """A JSON integer, int64 string or whole double as int, else None."""
    t = type(v)
    if t is int:
        return v
    if t is str:
        try:
            return int(v)
        except ValueError:
            f = to_float(v)
            return int(f) if f is not None and f.is_integer() else None
    if t is float and v.is_integer():
        return int(v)
    return None


def to_time(v: Any) -> datetime | None:
    """An RFC 3339 string (``Z`` or offset, 0-9 fraction digits), epoch number or {seconds, nanos} as UTC."""
    if v is None or v == "":
        return None
    if isinstance(v, str):
        try:
            dt = datetime.fromisoformat(v if v[-1] != "z" else v[:-1] + "Z")
        except ValueError:
            return None
    elif isinstance(v, int | float | dict) and not isinstance(v, bool):
        if isinstance(v, dict):
            v = (to_int(v.get("seconds")) or 0) + (to_int(v.get("nanos")) or 0) / 1e9
        try:
            return datetime.fromtimestamp(v, _UTC)
        except (ValueError, OverflowError, OSError):  # NaN, ±Inf, or outside years 1-9999
            return None
    else:
        return None
    tz = dt.tzinfo
    if tz is None:
        return dt.replace(tzinfo=_UTC)
    return dt if tz is _UTC else dt.astimezone(_UTC)


def error_message(v: Any) -> str | None:
    """The message of an error rendered as a string, ``{"message"}`` or ``{"code", "message"}``."""
    if v is None or v == "" or v == {}:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, dict):
        for key, val in v.items():
            if _k(key) in ("message", "msg", "detail", "description") and val:
                return str(val)
        inner = v.get("error")
        if inner is not None:
            return error_message(inner)
        code = v.get("code")
        return f"error code {code}" if code not in (None, "", 0) else None
    return str(v)


def _is_default(v: Any) -> bool:
    return v is None or v is False or v == 0 or v == "" or (isinstance(v, list | dict) and not v)


def _add_metrics(
    v: Any, metrics: dict[str, float], stderr: dict[str, float], extra: dict[str, Any]
) -> None:
    """Fill metrics/stderr from a map, a list of {name, value} pairs, or either wrapped once more."""
    if isinstance(v, dict):
        if len(v) == 1:
            ((only_key, inner),) = v.items()
            if _k(only_key) in _WRAPPERS and isinstance(inner, dict | list):
                _add_metrics(inner, metrics, stderr, extra)
                return
        items: Any = v.items()
    elif isinstance(v, list):
        pairs = []
        for el in v:
            if not isinstance(el, dict):
                continue
            name = val = None
            err = None
            for pk, pv in el.items():
                ck = _k(pk)
                if ck in _PAIR_NAME:
                    name = pv
                elif ck in _PAIR_VALUE:
                    val = pv
                elif ck == "stderr":
                    err = pv
            if name is None:
                continue
            pairs.append((str(name), 0.0 if val is None else val))
            if err is not None and (ef := to_float(err)) is not None:
                stderr[str(name)] = ef
        items = pairs
    else:
        return
    for name, val in items:
        f = to_float(val)
        if f is None:
            extra.setdefault("non_numeric_metrics", {})[name] = val
        elif "_stderr" in name:
            stderr[name.replace("_stderr", "", 1)] = f
        else:
            metrics[name] = f


def _add_stderr(v: Any, stderr: dict[str, float]) -> float | None:
    """Fill a stderr map; return a scalar stderr (which applies to the primary metric)."""
    if isinstance(v, dict):
        for name, val in v.items():
            f = to_float(val)
            if f is not None:
                stderr[name.replace("_stderr", "", 1)] = f
        return None
    return to_float(v)


def parse_result(d: Mapping[str, Any], name: str | None = None) -> BenchmarkResult:
    """One per-benchmark result in any rendering (``name`` comes from the map key if keyed)."""
    metrics: dict[str, float] = {}
    stderr: dict[str, float] = {}
    extra: dict[str, Any] = {}
    score: Any = None
    primary: str | None = None
    proportions: frozenset[str] | None = None
    num_samples = None
    scalar_err = None
    explicit_extra: Mapping[str, Any] | None = None
    stack = [d]
    while stack:
        cur = stack.pop()
        for key, v in cur.items():
            slot = _RESULT_RAW.get(key, _MISS)
            if slot is _MISS:
                slot = _learn(_RESULT_RAW, _RESULT_SLOTS, key)
            if slot is None:
                if not _is_default(v):
                    extra[_snake(key)] = v
            elif slot == "metrics":
                _add_metrics(v, metrics, stderr, extra)
            elif slot == "name":
                if name is None and isinstance(v, str):
                    name = v
            elif slot == "score":
                score = v
            elif slot == "primary":
                if isinstance(v, str) and v:
                    primary = v
            elif slot == "proportions":
                proportions = _names(v, proportions)
            elif slot == "num_samples":
                num_samples = to_int(v) or None
            elif slot == "stderr":
                scalar_err = _add_stderr(v, stderr)
            elif slot == "extra":
                if isinstance(v, dict):
                    explicit_extra = v
            elif slot == "nested":
                if isinstance(v, dict):
                    stack.append(v)
            elif slot == "status":
                st = Status.parse(v)
                if st is not Status.PENDING:
                    extra["status"] = st.value
            elif slot == "error":
                if (message := error_message(v)) is not None:
                    extra["error"] = message
            elif slot == "time":
                t = to_time(v)
                if t is not None:
                    extra[_snake(key)] = t
    if explicit_extra:
        extra.update(explicit_extra)
    _fold_score(to_float(score), primary, metrics, extra)
    result = BenchmarkResult(name or "", metrics, num_samples, stderr, extra, primary, proportions)
    if scalar_err is not None:
        try:
            stderr[result.primary_metric] = scalar_err
        except KeyError:
            extra["stderr"] = scalar_err
    return result


def _names(v: Any, known: frozenset[str] | None) -> frozenset[str] | None:
    """Metric names from a list of strings or a comma-separated string (added to ``known``)."""
    if isinstance(v, str):
        v = [part.strip() for part in v.split(",")]
    if not isinstance(v, list):
        return known
    return (known or frozenset()) | {str(x) for x in v if isinstance(x, str) and x}


def _fold_score(
    score: float | None, primary: str | None, metrics: dict[str, float], extra: dict[str, Any]
) -> None:
    """Make a result's score field one of its metrics, so one rule decides the score.

    A 0.0 score is what proto3 leaves out, so it cannot be told from "not set": it adds
    nothing (a result whose only figure is a 0.0 score has no score). Otherwise the score is
    the named primary metric's value, or a metric named ``score`` when no metric is named;
    where the named metric is also reported, the metrics win and the score is kept in extra.
    """
    if score is None or score == 0.0:
        return
    key = metric_key(primary) if primary else "score"
    present = next((name for name in metrics if metric_key(name) == key), None)
    if present is None:
        metrics[primary or "score"] = score
    elif metrics[present] != score and not (math.isnan(score) and math.isnan(metrics[present])):
        extra["score"] = score


def _parse_results(v: Any) -> tuple[BenchmarkResult, ...]:
    if isinstance(v, list):
        return tuple(parse_result(item) for item in v if isinstance(item, dict))
    if isinstance(v, dict):
        if len(v) == 1:
            ((only_key, inner),) = v.items()
            if _k(only_key) in _RESULT_WRAPPERS and isinstance(inner, dict | list):
                return _parse_results(inner)
        out = []
        for name, item in v.items():
            if isinstance(item, dict):
                out.append(parse_result(item, name))
            elif (f := to_float(item)) is not None:
                out.append(parse_result({"score": f}, name))
        return tuple(out)
    return ()


def _data_info(v: Any) -> DataInfo | None:
    """A spec's ``data`` object ``{digest, records, source}``, None without a digest."""
    if not isinstance(v, dict):
        return None
    fields = {_k(key): val for key, val in v.items()}
    digest = fields.get("digest") or fields.get("sha256")
    if not isinstance(digest, str) or not digest:
        return None
    source = fields.get("source")
    return DataInfo(
        digest, to_int(fields.get("records")), source if isinstance(source, str) else None
    )


def _parse_data(v: Any) -> tuple[DataInfo | None, ...]:
    """The ``data`` of each benchmark spec of a record, in spec order."""
    if not isinstance(v, list):
        return ()
    out: list[DataInfo | None] = []
    for item in v:
        info = None
        if isinstance(item, dict):
            for key, val in item.items():
                if _k(key) == "data":
                    info = _data_info(val)
        out.append(info)
    return tuple(out) if any(i is not None for i in out) else ()


def parse_precheck(payload: Any, asked: tuple[Benchmark, ...]) -> Precheck:
    """A precheck answer: ``{"data": {benchmarks: [{…spec, data?, problem?}], model_uri?,
    model_digest?, model_problem?}}``; its specs answer ``asked`` in order."""
    data = _unwrap(payload)
    fields = {_k(key): val for key, val in data.items()}
    entries = fields.get("benchmarks")
    if not isinstance(entries, list) or len(entries) != len(asked):
        raise ProtocolError(
            f"a precheck answer must hold one entry per spec asked ({len(asked)})",
            excerpt=str(entries)[:200],
        )
    checks = []
    for spec, entry in zip(asked, entries, strict=True):
        entry_fields = (
            {_k(key): val for key, val in entry.items()} if isinstance(entry, dict) else {}
        )
        checks.append(
            SpecCheck(
                spec,
                _data_info(entry_fields.get("data")),
                error_message(entry_fields.get("problem")),
            )
        )
    digest = fields.get("modeldigest")
    uri = fields.get("modeluri")
    return Precheck(
        tuple(checks),
        model_uri=uri if isinstance(uri, str) and uri else None,
        model_digest=digest if isinstance(digest, str) and digest else None,
        model_problem=error_message(fields.get("modelproblem")),
        raw=dict(data),
    )


def _parse_benchmarks(v: Any) -> tuple[Benchmark, ...]:
    if not isinstance(v, list):
        return ()
    out = []
    for item in v:
        if isinstance(item, str):
            out.append(Benchmark._unchecked(item))
        elif isinstance(item, dict):
            fields: dict[str, Any] = {}
            for key, val in item.items():
                fields[_k(key)] = val
            params = fields.get("parameters")
            out.append(
                Benchmark._unchecked(
                    str(fields.get("name") or fields.get("benchmark") or ""),
                    fields.get("dataset") or None,
                    to_int(fields.get("numsamples")) or None,
                    {str(a): str(b) for a, b in params.items()}
                    if isinstance(params, dict)
                    else None,
                )
            )
    return tuple(out)


def _progress_item(name: str | None, item: Any) -> BenchmarkProgress | None:
    if not isinstance(item, dict):
        n = to_int(item)
        return BenchmarkProgress(name, n or 0, None) if name and n is not None else None
    completed, total = 0, None
    for key, val in item.items():
        ck = _k(key)
        if ck in ("benchmark", "name", "benchmarkname") and name is None:
            name = str(val)
        elif ck in ("completed", "done", "completedsamples", "samplesdone"):
            completed = to_int(val) or 0
        elif ck in ("total", "totalsamples", "numsamples"):
            total = to_int(val) or None
    return BenchmarkProgress(name, completed, total) if name else None


def _parse_progress(v: Any) -> tuple[BenchmarkProgress, ...]:
    if isinstance(v, list):
        items = [_progress_item(None, item) for item in v]
    elif isinstance(v, dict):
        items = [_progress_item(str(name), item) for name, item in v.items()]
    else:
        return ()
    return tuple(p for p in items if p is not None)


def _unwrap(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict) and isinstance(payload, Mapping):
        payload = dict(payload)
    if not isinstance(payload, dict):
        raise ProtocolError(
            "expected a JSON object for an evaluation", excerpt=type(payload).__name__
        )
    data = payload.get("data")
    return data if isinstance(data, dict) else payload


def parse_evaluation(payload: Mapping[str, Any]) -> Evaluation:
    """Turn any coordinator rendering of an evaluation (full record or listing item) into an Evaluation."""
    data = _unwrap(payload)
    slots: dict[str, Any] = {}
    stack = [data]
    while stack:
        cur = stack.pop()
        for key, v in cur.items():
            slot = _EVAL_RAW.get(key, _MISS)
            if slot is _MISS:
                slot = _learn(_EVAL_RAW, _EVAL_SLOTS, key)
            if slot == "nested":
                if isinstance(v, dict):
                    stack.append(v)
            elif slot is not None and slot not in slots:
                slots[slot] = v
    ev_id = slots.get("evaluation_id")
    job_id = slots.get("job_id")
    if not ev_id:
        # a listing item is the evaluation's own job record: its job_id is the evaluation id
        ev_id, job_id = job_id, slots.get("parent_job_id")
        labels = slots.get("labels")
        if not job_id and isinstance(labels, dict):
            for key, val in labels.items():
                if _k(key) == "parentjobid":
                    job_id = val
    if not ev_id or not isinstance(ev_id, str | int):
        raise ProtocolError(
            "evaluation payload has no evaluation_id", excerpt=str(list(data))[:200]
        )
    status = Status.parse(slots.get("status"))
    error = error_message(slots.get("error"))
    if error is None and status is not Status.COMPLETED:
        error = error_message(slots.get("error_alt"))
    results = slots.get("results")
    return Evaluation(
        evaluation_id=str(ev_id),
        job_id=str(job_id) if job_id else None,
        model_uri=slots.get("model_uri") or None,
        checkpoint_id=str(slots.get("checkpoint_id") or ""),
        status=status,
        results=_parse_results(results) if results is not None else (),
        error=error,
        created_at=to_time(slots.get("created_at")),
        updated_at=to_time(slots.get("updated_at")),
        raw=dict(data),
        benchmarks=_parse_benchmarks(slots.get("benchmarks")),
        data=_parse_data(slots.get("benchmarks")),
        model_digest=digest
        if isinstance(digest := slots.get("model_digest"), str) and digest
        else None,
        progress=_parse_progress(slots.get("progress")),
        started_at=to_time(slots.get("started_at")),
        completed_at=to_time(slots.get("completed_at")),
    )


def parse_page(payload: Any) -> EvaluationPage:
    """One listing page: ``{"data": {"evaluations": [...], "next_page_token", "total_count"}}`` or variants."""
    if isinstance(payload, list):
        return EvaluationPage([parse_evaluation(item) for item in payload], None, None)
    data = _unwrap(payload)
    items: Any = []
    token = total = None
    for key, v in data.items():
        ck = _k(key)
        if ck in ("evaluations", "items", "jobs"):
            items = v or []
        elif ck == "nextpagetoken":
            token = v
        elif ck in ("totalcount", "total", "totalsize"):
            total = to_int(v)
    if not isinstance(items, list):
        raise ProtocolError("listing 'evaluations' is not a list", excerpt=type(items).__name__)
    if token is not None and not isinstance(token, str):
        token = str(token)
    return EvaluationPage(
        [parse_evaluation(item) for item in items if isinstance(item, dict)],
        token or None,
        total,
    )


_SAMPLE_SLOTS = {
    "itemid": "item_id",
    "id": "item_id",
    "sampleid": "item_id",
    "docid": "item_id",
    "taskid": "item_id",
    "benchmark": "benchmark",
    "benchmarkname": "benchmark",
    "correct": "correct",
    "passed": "correct",
    "iscorrect": "correct",
    "score": "score",
    "cluster": "cluster",
    "subject": "cluster",
    "record": "record",
    "index": "index",
}


def _to_bool(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    return None


def parse_sample(d: Mapping[str, Any], benchmark: str = "") -> Sample:
    """One per-item record in any rendering: an item id, an outcome and what was stored.

    Fields of the envelope win over the same fields inside ``record``; an item without an id
    takes its position (``index``); ``correct`` gives the score 1.0/0.0 when no score is sent.
    """
    slots: dict[str, Any] = {}
    record: dict[str, Any] = {}
    for key, v in d.items():
        slot = _SAMPLE_SLOTS.get(_k(key))
        if slot == "record" and isinstance(v, dict):
            record = v
        elif slot is not None and slot not in slots:
            slots[slot] = v
    for key, v in record.items():
        slot = _SAMPLE_SLOTS.get(_k(key))
        if slot is not None and slot not in ("record", "index") and slot not in slots:
            slots[slot] = v
    item_id = slots.get("item_id")
    if item_id is None or isinstance(item_id, dict | list) or item_id == "":
        item_id = slots.get("index")
    if item_id is None or isinstance(item_id, dict | list):
        raise ProtocolError("a sample has neither an item id nor an index", excerpt=str(d)[:200])
    correct = _to_bool(slots.get("correct"))
    score = to_float(slots.get("score"))
    if score is None and correct is not None:
        score = float(correct)
    cluster = slots.get("cluster")
    return Sample(
        item_id=str(item_id),
        benchmark=str(slots.get("benchmark") or benchmark),
        score=score,
        correct=correct,
        cluster=str(cluster) if isinstance(cluster, str | int) and cluster != "" else None,
        record=record or {k: v for k, v in d.items() if _k(k) != "record"},
    )


def parse_sample_page(payload: Any, benchmark: str = "") -> SamplePage:
    """One page of the samples route: ``{"data": {"samples": [...], "next_page_token"}}`` or variants."""
    if isinstance(payload, list):
        return SamplePage([parse_sample(i, benchmark) for i in payload if isinstance(i, dict)])
    data = _unwrap(payload)
    items: Any = []
    token = None
    for key, v in data.items():
        ck = _k(key)
        if ck in ("samples", "items", "records"):
            items = v or []
        elif ck == "nextpagetoken":
            token = v
    if not isinstance(items, list):
        raise ProtocolError("samples page 'samples' is not a list", excerpt=type(items).__name__)
    return SamplePage(
        [parse_sample(item, benchmark) for item in items if isinstance(item, dict)],
        str(token) if token else None,
    )
