"""scaimind_nb: the ScaiMind evaluation API in Jupyter and Python.

Names are imported lazily on first use, so ``import scaimind_nb`` loads no pandas, httpx,
ipywidgets or IPython and registers nothing.
"""

from __future__ import annotations

import contextlib
import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "API_PREFIX": "._contract",
    "Route": "._contract",
    "Client": "._client",
    "AsyncClient": "._async_client",
    "Benchmark": "._models",
    "BenchmarkProgress": "._models",
    "BenchmarkResult": "._models",
    "DataInfo": "._models",
    "Evaluation": "._models",
    "EvaluationPage": "._models",
    "PollEvent": "._models",
    "Precheck": "._models",
    "SpecCheck": "._models",
    "Status": "._models",
    "Sample": "._models",
    "metric_key": "._models",
    "parse_evaluation": "._normalise",
    "parse_page": "._normalise",
    "results_frame": "._frames",
    "evaluations_frame": "._frames",
    "compare": "._frames",
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
    "PrecheckNotAvailableError": "._errors",
    "EvaluationFailedError": "._errors",
    "WaitTimeoutError": "._errors",
}
"""Every public name and the private module that defines it: the one list of the surface."""

__all__ = sorted(_EXPORTS)

_DEPRECATED = {
    "find_evaluation": "call client.find_evaluation(...) on a Client or AsyncClient instead",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        if name in _DEPRECATED:
            return _deprecated(name)
        raise AttributeError(f"module 'scaimind_nb' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    _publish(value)
    globals()[name] = value
    return value


def _publish(value: Any) -> None:
    """Public classes and functions report ``scaimind_nb`` as their module (help(), reprs, docs)."""
    if isinstance(value, type) or callable(value):
        with contextlib.suppress(AttributeError, TypeError):
            value.__module__ = __name__


def _deprecated(name: str) -> Any:
    import warnings

    warnings.warn(
        f"scaimind_nb.{name} is deprecated and will be removed; {_DEPRECATED[name]}",
        DeprecationWarning,
        stacklevel=3,
    )

    def find_evaluation(client: Any, *args: Any, **kwargs: Any) -> Any:
        return client.find_evaluation(*args, **kwargs)

    return find_evaluation


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


# the errors are small and stdlib-only: publish them now, so tracebacks say scaimind_nb.NotFoundError
for _name, _module in _EXPORTS.items():
    if _module == "._errors":
        __getattr__(_name)


if TYPE_CHECKING:  # the same names for type checkers: `X as X` marks a re-export
    from ._async_client import (
        AsyncClient as AsyncClient,
    )
    from ._client import (
        Client as Client,
    )
    from ._contract import (
        API_PREFIX as API_PREFIX,
        Route as Route,
    )
    from ._errors import (
        APIConnectionError as APIConnectionError,
        APIStatusError as APIStatusError,
        APITimeoutError as APITimeoutError,
        AuthenticationError as AuthenticationError,
        BadRequestError as BadRequestError,
        ConflictError as ConflictError,
        EvaluationFailedError as EvaluationFailedError,
        NotFoundError as NotFoundError,
        PermissionDeniedError as PermissionDeniedError,
        PrecheckNotAvailableError as PrecheckNotAvailableError,
        ProtocolError as ProtocolError,
        RateLimitError as RateLimitError,
        SamplesNotAvailableError as SamplesNotAvailableError,
        ScaimindError as ScaimindError,
        ScaimindKeyError as ScaimindKeyError,
        ScaimindValueError as ScaimindValueError,
        ServerError as ServerError,
        UnprocessableEntityError as UnprocessableEntityError,
        WaitTimeoutError as WaitTimeoutError,
    )
    from ._evaluate import (
        EvaluationRun as EvaluationRun,
        evaluate as evaluate,
    )
    from ._frames import (
        compare as compare,
        evaluations_frame as evaluations_frame,
        results_frame as results_frame,
    )
    from ._magics import (
        load_ipython_extension as load_ipython_extension,
        unload_ipython_extension as unload_ipython_extension,
    )
    from ._models import (
        Benchmark as Benchmark,
        BenchmarkProgress as BenchmarkProgress,
        BenchmarkResult as BenchmarkResult,
        DataInfo as DataInfo,
        Evaluation as Evaluation,
        EvaluationPage as EvaluationPage,
        PollEvent as PollEvent,
        Precheck as Precheck,
        Sample as Sample,
        SpecCheck as SpecCheck,
        Status as Status,
        metric_key as metric_key,
    )
    from ._normalise import (
        parse_evaluation as parse_evaluation,
        parse_page as parse_page,
    )
    from ._plot import (
        plot_compare as plot_compare,
    )
    from ._views import (
        pass_fail as pass_fail,
        styled as styled,
    )
