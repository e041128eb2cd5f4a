"""scaimind_local: the embedded ScaiMind coordinator (same REST API, SQLite, real evaluation)."""

from ._backends.base import (
    LoglikelihoodBackend,
    ModelBackend,
    ModelManifest,
    supports_loglikelihood,
)
from ._benchmarks.base import (
    BenchmarkCancelled,
    BenchmarkRunner,
    BenchmarkSpec,
    InvalidBenchmark,
    RunContext,
    RunnerResult,
)
from ._coordinator import ApiCallError, LocalCoordinator
from ._registry import ENTRY_POINT_GROUP, hookimpl

__all__ = [
    "ENTRY_POINT_GROUP",
    "ApiCallError",
    "BenchmarkCancelled",
    "BenchmarkRunner",
    "BenchmarkSpec",
    "InvalidBenchmark",
    "LocalCoordinator",
    "LoglikelihoodBackend",
    "ModelBackend",
    "ModelManifest",
    "RunContext",
    "RunnerResult",
    "hookimpl",
    "supports_loglikelihood",
]
