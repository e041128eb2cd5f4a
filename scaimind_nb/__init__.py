"""scaimind_nb: the ScaiMind evaluation API in Jupyter and Python.

Names are imported lazily on first use, so ``import scaimind_nb`` loads no pandas, httpx,
ipywidgets or IPython and registers nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Client": "._client",
    "find_evaluation": "._client",
    "AsyncClient": "._async_client",
    "Benchmark": "._models",
    "BenchmarkProgress": "._models",
    "BenchmarkResult": "._models",
    "DataInfo": "._models",
    "Evaluation": "._models",
    "EvaluationPage": "._models",
    "Status": "._models",
    "Sample": "._models",
    "metric_key": "._models",
    "parse_evaluation": "._normalise",
    "parse_page": "._normalise",
    "results_frame": "._frames",
    "evaluations_frame": "._frames",
    "compare": "._frames",
    "aevaluations_frame": "._frames",
    "samples": "._frames",
    "diff": "._frames",
    "evaluate": "._evaluate",
    "EvaluationRun": "._evaluate",
    "styled": "._views",
    "pass_fail": "._views",
    "plot_compare": "._plot",
    "load_ipython_extension": "._magics",
    "unload_ipython_extension": "._magics",
    "ScaimindError": "._errors",
    "ScaimindValueError": "._errors",
    "ScaimindKeyError": "._errors",
    "APIStatusError": "._errors",
    "BadRequestError": "._errors",
    "AuthenticationError": "._errors",
    "PermissionDeniedError": "._errors",
    "NotFoundError": "._errors",
    "ConflictError": "._errors",
    "UnprocessableEntityError": "._errors",
    "RateLimitError": "._errors",
    "ServerError": "._errors",
    "APIConnectionError": "._errors",
    "APITimeoutError": "._errors",
    "ProtocolError": "._errors",
    "SamplesNotAvailableError": "._errors",
    "EvaluationFailedError": "._errors",
    "WaitTimeoutError": "._errors",
}

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "Benchmark",
    "BenchmarkProgress",
    "BenchmarkResult",
    "Client",
    "ConflictError",
    "DataInfo",
    "Evaluation",
    "EvaluationFailedError",
    "EvaluationPage",
    "EvaluationRun",
    "NotFoundError",
    "PermissionDeniedError",
    "ProtocolError",
    "RateLimitError",
    "Sample",
    "SamplesNotAvailableError",
    "ScaimindError",
    "ScaimindKeyError",
    "ScaimindValueError",
    "ServerError",
    "Status",
    "UnprocessableEntityError",
    "WaitTimeoutError",
    "aevaluations_frame",
    "compare",
    "diff",
    "evaluate",
    "evaluations_frame",
    "find_evaluation",
    "load_ipython_extension",
    "metric_key",
    "parse_evaluation",
    "parse_page",
    "pass_fail",
    "plot_compare",
    "results_frame",
    "samples",
    "styled",
    "unload_ipython_extension",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'scaimind_nb' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from ._async_client import AsyncClient
    from ._client import Client, find_evaluation
    from ._errors import (
        APIConnectionError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        ConflictError,
        EvaluationFailedError,
        NotFoundError,
        PermissionDeniedError,
        ProtocolError,
        RateLimitError,
        SamplesNotAvailableError,
        ScaimindError,
        ScaimindKeyError,
        ScaimindValueError,
        ServerError,
        UnprocessableEntityError,
        WaitTimeoutError,
    )
    from ._evaluate import EvaluationRun, evaluate
    from ._frames import (
        aevaluations_frame,
        compare,
        diff,
        evaluations_frame,
        results_frame,
        samples,
    )
    from ._magics import load_ipython_extension, unload_ipython_extension
    from ._models import (
        Benchmark,
        BenchmarkProgress,
        BenchmarkResult,
        DataInfo,
        Evaluation,
        EvaluationPage,
        Sample,
        Status,
        metric_key,
    )
    from ._normalise import parse_evaluation, parse_page
    from ._plot import plot_compare
    from ._views import pass_fail, styled
