"""The `python` backend: an importable class, factory or function answers the prompts.

Manifest: `{"backend": "python", "target": "pkg.module:attr", "options": {...}}`. A class is
called with `options`; a function with a `prompts` parameter is the `generate` itself; any other
callable is a factory called with `options`; an object with `generate` is used as it is.
The object's optional `loglikelihood` and `chat` are passed through (see `_backends.base`).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._benchmarks._shared import cut_at_stop
from .._benchmarks.base import InvalidBenchmark
from .base import ModelManifest


def _target(manifest: ModelManifest) -> Any:
    target = manifest.config.get("target")
    if not isinstance(target, str) or ":" not in target:
        raise InvalidBenchmark(
            f'{manifest.folder}: the python backend needs "target": "pkg.module:attr"'
        )
    module_name, _, attr = target.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise InvalidBenchmark(f"model target {target!r} cannot be imported: {exc}") from None
    return obj


def artefacts(manifest: ModelManifest) -> list[tuple[str, Path]]:
    """The target module's source file, so editing the model's code changes the model digest.

    Only the file is read: a module the coordinator imported before the edit keeps running
    its old code until the coordinator restarts.
    """
    target = manifest.config.get("target")
    if not isinstance(target, str) or ":" not in target:
        return []
    module_name = target.partition(":")[0]
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return []
    origin = Path(spec.origin) if spec is not None and spec.origin else None
    return [(f"module {module_name}", origin)] if origin is not None and origin.is_file() else []


def check(manifest: ModelManifest, settings: dict[str, Any]) -> None:
    """The target must import and the options must be an object."""
    _target(manifest)
    if not isinstance(manifest.config.get("options", {}), dict):
        raise InvalidBenchmark(f'{manifest.folder}: "options" must be a JSON object')


class PythonModel:
    """Adapts a user object to `ModelBackend`, checking what it returns."""

    def __init__(
        self,
        generate: Callable[..., Any],
        loglikelihood: Callable[..., Any] | None,
        chat: Callable[..., Any] | None = None,
    ):
        self._generate = generate
        if loglikelihood is not None:
            self.loglikelihood = loglikelihood
        if chat is not None:
            self._user_chat = chat
            self.chat = self._chat

    def generate(
        self, prompts: list[str], *, max_new_tokens: int, temperature: float, stop: list[str] | None
    ) -> list[str]:
        out = self._generate(
            list(prompts), max_new_tokens=max_new_tokens, temperature=temperature, stop=stop
        )
        return _checked("generate", out, len(prompts), stop)

    def _chat(
        self,
        conversations: list[list[dict[str, str]]],
        *,
        max_new_tokens: int,
        temperature: float,
        stop: list[str] | None,
    ) -> list[str]:
        out = self._user_chat(
            list(conversations), max_new_tokens=max_new_tokens, temperature=temperature, stop=stop
        )
        return _checked("chat", out, len(conversations), stop)


def _checked(method: str, out: Any, expected: int, stop: list[str] | None) -> list[str]:
    """The user's answers, one string per input, cut at the first stop sequence."""
    if not isinstance(out, list) or len(out) != expected:
        raise TypeError(
            f"the model's {method} returned {type(out).__name__} of length "
            f"{len(out) if hasattr(out, '__len__') else '?'} for {expected} inputs; "
            "it must return one string per input"
        )
    return [cut_at_stop(str(text), stop or ()) for text in out]


def load(manifest: ModelManifest, settings: dict[str, Any]) -> PythonModel:
    """Import the target and build the model object."""
    target: Any = _target(manifest)
    options = manifest.config.get("options", {})
    obj: Any = target
    is_class = inspect.isclass(target)
    if is_class:
        obj = target(options)
    elif callable(target) and not hasattr(target, "generate"):
        if "prompts" in inspect.signature(target).parameters:
            return PythonModel(target, None)
        obj = target(options)
    if not callable(getattr(obj, "generate", None)):
        raise TypeError(f"model target {manifest.config['target']!r} has no generate method")
    chat = getattr(obj, "chat", None)
    return PythonModel(
        obj.generate, getattr(obj, "loglikelihood", None), chat if callable(chat) else None
    )
