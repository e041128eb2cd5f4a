"""Model backends: turn a model folder's manifest into an object that answers prompts.

`backend` in `scaimind-model.json` names a module here with `load(manifest, settings)`; an
optional `check(manifest, settings)` runs at submit time so a bad model is a 400, not a failed run,
and an optional `cache_key(manifest)` says which manifests are the same loaded model.
`MODELS` is the process's one cache of loaded models.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import json
import threading
from collections import OrderedDict
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from .._benchmarks.base import InvalidBenchmark
from .base import ModelBackend, ModelManifest

MANIFEST = "scaimind-model.json"

# backend -> (module, extra to install, top-level modules the extra provides)
_BACKENDS: dict[str, tuple[str, str | None, tuple[str, ...]]] = {
    "python": ("scaimind_local._backends.python", None, ()),
    "openai": ("scaimind_local._backends.openai", None, ()),
    "hf": ("scaimind_local._backends.hf", "hf", ("torch", "transformers")),
    "llamacpp": ("scaimind_local._backends.llamacpp", "llamacpp", ("llama_cpp",)),
}


def read_manifest(path: Path) -> ModelManifest:
    """Parse the manifest of a model folder (or the manifest file itself)."""
    file = path / MANIFEST if path.is_dir() else path
    if not file.is_file():
        raise InvalidBenchmark(f"no model at {path}: expected a folder holding {MANIFEST}")
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidBenchmark(f"{file} is not valid JSON: {exc}") from None
    if not isinstance(config, dict) or not isinstance(config.get("backend"), str):
        raise InvalidBenchmark(f'{file} must be a JSON object with a "backend" string')
    backend = config["backend"]
    if backend not in _BACKENDS:
        raise InvalidBenchmark(
            f"{file}: unknown backend {backend!r}; known: {', '.join(sorted(_BACKENDS))}"
        )
    return ModelManifest(backend=backend, folder=str(file.parent), config=config)


def _module(manifest: ModelManifest) -> Any:
    module_name, extra, needs = _BACKENDS[manifest.backend]
    missing = [m for m in needs if importlib.util.find_spec(m) is None]
    if missing:
        raise InvalidBenchmark(
            f"the {manifest.backend!r} backend needs {', '.join(missing)}: "
            f"pip install 'scaimind-nb[{extra}]'"
        )
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise InvalidBenchmark(
            f"the {manifest.backend!r} backend is not available on this coordinator ({exc})"
        ) from None


def check_model(manifest: ModelManifest, settings: dict[str, Any]) -> None:
    """Refuse at submit time a model this server could not load (InvalidBenchmark)."""
    check = getattr(_module(manifest), "check", None)
    if check is not None:
        check(manifest, settings)


def _cache_key(module: Any, manifest: ModelManifest) -> tuple[str, Hashable]:
    key = getattr(module, "cache_key", None)
    if callable(key):
        return manifest.backend, key(manifest)
    return manifest.backend, (
        manifest.folder,
        json.dumps(manifest.config, sort_keys=True, default=str),
    )


class ModelCache:
    """Loaded models, keyed by what they are (not by the URI naming them), at most `size` kept.

    Two manifests that name the same weights with the same options share one load. Before a
    new model loads, the least recently used ones are dropped so that at most `size` stay
    referenced here; a dropped model is freed as soon as no running evaluation holds it. Two
    workers asking for the same model at once load it once.
    """

    def __init__(self, size: int = 2) -> None:
        if size < 1:
            raise ValueError("a model cache holds at least one model")
        self.size = size
        self._models: OrderedDict[tuple[str, Hashable], ModelBackend] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, Hashable], threading.Lock] = {}

    def __len__(self) -> int:
        return len(self._models)

    def get(self, path: Path, settings: dict[str, Any]) -> ModelBackend:
        """The model of the folder (or manifest file) at `path`, loaded on first use."""
        return self.load(read_manifest(path), settings)

    def load(self, manifest: ModelManifest, settings: dict[str, Any]) -> ModelBackend:
        """The model `manifest` describes, loaded on first use."""
        module = _module(manifest)
        key = _cache_key(module, manifest)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            with self._lock:
                if key in self._models:
                    self._models.move_to_end(key)
                    return self._models[key]
                evicted = False
                while len(self._models) >= self.size:
                    self._models.popitem(last=False)
                    evicted = True
            if evicted:
                gc.collect()  # free the dropped model's memory before loading the next one
            try:
                model: ModelBackend = module.load(manifest, settings)
            finally:
                with self._lock:
                    self._loading.pop(key, None)
            with self._lock:
                self._models[key] = model
            return model


MODELS = ModelCache()
"""The process's loaded models, shared by every coordinator it runs."""
