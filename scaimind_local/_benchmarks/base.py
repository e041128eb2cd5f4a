"""The seam between the coordinator and benchmark runners.

A runner is registered under a name (`mmlu`) or a prefix (`custom-`). The coordinator calls
`describe` (or, for a runner without it, `validate`) at submit time and for a precheck (raise
`InvalidBenchmark` -> HTTP 400 / the spec's problem), `run` in a worker, and `describe` again
around `run` to refuse data that changed since submit. `run` reports progress and checks for
cancellation through the `RunContext` once per sample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from scaimind_nb._models import DataInfo

from .._backends.base import ModelBackend
from .._errors import InvalidBenchmark

__all__ = [
    "BenchmarkCancelled",
    "BenchmarkRunner",
    "BenchmarkSpec",
    "DataInfo",
    "InvalidBenchmark",
    "RunContext",
    "RunnerResult",
]


class BenchmarkCancelled(Exception):
    """Raised by `RunContext.checkpoint` when the evaluation was cancelled."""


@dataclass(frozen=True)
class BenchmarkSpec:
    """One entry of the submit body's `benchmarks` list, validated."""

    name: str
    dataset: str | None = None
    num_samples: int | None = None
    parameters: dict[str, str] = field(default_factory=dict)


@dataclass
class RunContext:
    """What a runner gets from the coordinator while it runs one benchmark."""

    evaluation_id: str
    resolve_path: Callable[[str], Path]
    """Turns a dataset URI (`scaidrive://…`, `file://…`, a path) into a local path, or raises InvalidBenchmark."""
    report_progress: Callable[[int, int], None]
    """(samples done, samples total); call once per sample or batch."""
    is_cancelled: Callable[[], bool]
    settings: dict[str, Any] = field(default_factory=dict)
    """Server-side options, e.g. `mmlu_data` (a path) or `sandbox_workers`."""
    workers: int = 2
    """How many CPU cores the runner may use."""

    def checkpoint(self, done: int, total: int) -> None:
        """Report progress and stop at this sample boundary if the evaluation was cancelled."""
        self.report_progress(done, total)
        if self.is_cancelled():
            raise BenchmarkCancelled(self.evaluation_id)


@dataclass
class RunnerResult:
    """What a runner returns: metrics, their standard errors and the per-sample records."""

    metrics: dict[str, float]
    num_samples: int
    stderr: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    """JSON-serialisable details (scoring mode, chosen ids, per-subject figures...)."""
    samples: list[dict[str, Any]] = field(default_factory=list)
    """Per-sample records stored and served by the samples route. Each carries `id` (the item's
    stable id: the same item has the same id in every evaluation of the same data), `correct`
    (bool) for a binary outcome or `score` (a float in [0, 1]) for a graded one, and optionally
    `subject` (the cluster the item belongs to, for clustered standard errors)."""
    primary_metric: str | None = None
    """The metric that is the benchmark's score (one of `metrics`)."""
    proportions: tuple[str, ...] = ()
    """The metrics that are proportions of samples (a share of items correct), for intervals."""


class BenchmarkRunner(Protocol):
    """A benchmark implementation."""

    name: str
    """The benchmark name, or a prefix ending in '-' (e.g. 'custom-')."""

    def validate(self, spec: BenchmarkSpec, ctx: RunContext) -> None:
        """Refuse a spec that cannot run (missing dataset, bad parameter) with InvalidBenchmark."""
        ...

    def describe(self, spec: BenchmarkSpec, ctx: RunContext) -> DataInfo:
        """Check the spec as `validate` does and say what data it scores, read in full now.

        `DataInfo.digest` is the `sha256:<hex>` of the bytes the runner parses (a file, or every
        file of a folder), `records` how many items the data holds (before `num_samples`),
        `source` where it comes from without server paths (a scaidrive:// URI, a package name).
        Raise InvalidBenchmark with the data's first problem (`line 2: invalid JSON`).
        Optional: a runner without it gets no digest (and so no content-verified reuse).
        """
        ...

    def run(self, spec: BenchmarkSpec, model: ModelBackend, ctx: RunContext) -> RunnerResult:
        """Score the model; call ctx.checkpoint(done, total) at each sample boundary."""
        ...
