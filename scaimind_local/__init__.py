"""scaimind_local: the embedded ScaiMind coordinator (same REST API, SQLite, real evaluation)."""

import logging

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

# A library's records go to its logger: without a handler of the application's, Python would
# print warnings and worker tracebacks to stderr, i.e. into whatever notebook cell is running.
logging.getLogger("scaimind_local").addHandler(logging.NullHandler())

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
