"""Typed, immutable views of evaluations: Status, Benchmark, BenchmarkResult, Evaluation."""

from __future__ import annotations

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
    "Evaluation",
    "EvaluationPage",
    "Status",
    "metric_key",
]


_METRIC_KEY_CACHE: dict[str, str] = {}


def metric_key(name: str) -> str:
    """Compare-key of a metric name: case-, underscore- and punctuation-blind (``pass@1``==``pass_at_1``)."""
    key = _METRIC_KEY_CACHE.get(name)
    if key is None:
        base = name.split(",", 1)[0].lower().replace("@", "at")
        key = "".join(ch for ch in base if ch.isalnum())
        _METRIC_KEY_CACHE[name] = key
    return key


_PREFERRED = ("accuracy", "acc", "exactmatch", "passat1")
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
    """Metrics of one benchmark; ``.score`` is the primary metric per the contract's rule."""

    benchmark: str
    metrics: dict[str, float] = field(default_factory=dict)
    num_samples: int | None = None
    stderr: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    score_field: float | None = None

    def __hash__(self) -> int:
        return hash((self.benchmark, self.num_samples, self.score_field, tuple(self.metrics)))

    @property
    def primary_metric(self) -> str:
        """Name of the primary metric: score field, ``score``, accuracy/acc/exact_match/pass@1, the only one."""
        if self.score_field is not None:
            return self._hinted_primary() or "score"
        by_key: dict[str, str] = {}
        for name in self.metrics:
            by_key.setdefault(metric_key(name), name)
        if "score" in by_key:
            return by_key["score"]
        for pref in _PREFERRED:
            if pref in by_key:
                return by_key[pref]
        if len(self.metrics) == 1:
            return next(iter(self.metrics))
        if not self.metrics:
            raise ScaimindKeyError(f"benchmark {self.benchmark!r} has no metrics")
        raise ScaimindKeyError(
            f"benchmark {self.benchmark!r} has no primary metric among "
            f"{', '.join(sorted(self.metrics))}; pass metric=..."
        )

    def _hinted_primary(self) -> str | None:
        """The metric the coordinator names as primary (``primary_metric``) when it holds the score."""
        hint = self.extra.get("primary_metric")
        name = self._resolve(hint) if isinstance(hint, str) and hint else None
        return name if name is not None and self.metrics[name] == self.score_field else None

    @property
    def score(self) -> float:
        """The primary metric's value."""
        return self.value()

    def _resolve(self, metric: str) -> str | None:
        if metric in self.metrics:
            return metric
        want = metric_key(metric)
        for name in self.metrics:
            if metric_key(name) == want:
                return name
        return None

    def value(self, metric: str | None = None) -> float:
        """Value of ``metric`` (matched case- and punctuation-blind) or of the primary metric."""
        name = self.primary_metric if metric is None else metric
        if name == "score" and self.score_field is not None and "score" not in self.metrics:
            return self.score_field
        resolved = self._resolve(name)
        if resolved is None:
            have = sorted(self.metrics) + (["score"] if self.score_field is not None else [])
            raise ScaimindKeyError(
                f"benchmark {self.benchmark!r} has no metric {name!r}; available: {', '.join(have) or 'none'}"
            )
        return self.metrics[resolved]

    def stderr_of(self, metric: str | None = None) -> float | None:
        """Standard error of ``metric`` (or the primary metric), None when not reported."""
        name = self.primary_metric if metric is None else metric
        if name in self.stderr:
            return self.stderr[name]
        want = metric_key(name)
        for k, v in self.stderr.items():
            if metric_key(k) == want:
                return v
        return None


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

    def __hash__(self) -> int:
        return hash((self.evaluation_id, self.status, self.updated_at))

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
class EvaluationPage:
    """One page of the evaluation listing."""

    evaluations: list[Evaluation]
    next_page_token: str | None = None
    total_count: int | None = None

    def __iter__(self) -> Any:
        return iter(self.evaluations)

    def __len__(self) -> int:
        return len(self.evaluations)
