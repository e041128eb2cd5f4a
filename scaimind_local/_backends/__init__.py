"""Model backends: turn a model folder's manifest into an object that answers prompts.

`backend` in `scaimind-model.json` names a module here with `load(manifest, settings)`; an
optional `check(manifest, settings)` runs at submit time so a bad model is a 400, not a failed run,
an optional `artefacts(manifest)` lists the files the model is made of, for its digest, and an
optional `cache_key(manifest)` says which manifests are the same loaded model. `MODELS` is the
process's one cache of loaded models.
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
from .._digest import FILES, text_digest
from .._json import load_json
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
        text = file.read_bytes()
    except OSError as exc:
        raise InvalidBenchmark(f"{file} cannot be read: {exc.strerror}") from None
    config = load_json(text, str(file), error=InvalidBenchmark)
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


def model_digest(manifest: ModelManifest) -> str:
    """`sha256:<hex>` over the manifest's content and every file it references.

    The files are the backend's `artefacts` (weights, GGUF, tokenizer, a python target's module),
    each named relative to the model folder, so a copy of the folder has the same digest. File
    digests are cached by (device, inode, size, mtime_ns): see `scaimind_local._digest`. An
    `openai` model is its manifest only: what the endpoint serves behind it is not seen.
    """
    module = importlib.import_module(_BACKENDS[manifest.backend][0])
    artefacts = getattr(module, "artefacts", None)
    files = artefacts(manifest) if artefacts is not None else []
    return text_digest(
        {"manifest": manifest.config, "files": sorted((label, FILES(f)) for label, f in files)}
    )


def _cache_key(module: Any, manifest: ModelManifest) -> Hashable:
    key = getattr(module, "cache_key", None)
    if callable(key):
        return key(manifest)
    return manifest.folder, json.dumps(manifest.config, sort_keys=True, default=str)


class ModelCache:
    """Loaded models, keyed by what they are (not by the URI naming them), at most `size` kept.

    The key is the backend, the backend's `cache_key` (the weights and every option) and the
    model's content digest, so two manifests naming the same weights with the same options share
    one load and changed weights load afresh. Before a new model loads, the least recently used
    ones are dropped so that at most `size` stay referenced here; a dropped model is freed as
    soon as no running evaluation holds it. Two workers asking for the same model load it once.
    """

    def __init__(self, size: int = 2) -> None:
        if size < 1:
            raise ValueError("a model cache holds at least one model")
        self.size = size
        self._models: OrderedDict[tuple[str, Hashable, str], ModelBackend] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, Hashable, str], threading.Lock] = {}

    def __len__(self) -> int:
        return len(self._models)

    def get(
        self, uri: str, path: Path, settings: dict[str, Any], digest: str | None = None
    ) -> ModelBackend:
        """The loaded model of `path` (named `uri`); `digest` is its `model_digest` if known."""
        return self.load(read_manifest(path), settings, digest)

    def load(
        self, manifest: ModelManifest, settings: dict[str, Any], digest: str | None = None
    ) -> ModelBackend:
        """The model `manifest` describes, loaded on first use."""
        module = _module(manifest)
        key = (manifest.backend, _cache_key(module, manifest), digest or model_digest(manifest))
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
