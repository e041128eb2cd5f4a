"""Model backends: turn a model folder's manifest into an object that answers prompts.

`backend` in `scaimind-model.json` names a module here with `load(manifest, settings)`; an
optional `check(manifest, settings)` runs at submit time so a bad model is a 400, not a failed run.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from pathlib import Path
from typing import Any

from .._benchmarks.base import InvalidBenchmark
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


class ModelCache:
    """Loaded models keyed by (uri, manifest mtime), so one evaluation loads its model once."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._models: dict[tuple[str, float], ModelBackend] = {}
        self._lock = threading.Lock()

    def get(self, uri: str, path: Path, settings: dict[str, Any]) -> ModelBackend:
        manifest = read_manifest(path)
        key = (uri, Path(manifest.folder, MANIFEST).stat().st_mtime)
        with self._lock:
            model = self._models.get(key)
            if model is None:
                model = _module(manifest).load(manifest, settings)
                while len(self._models) >= self.size:
                    self._models.pop(next(iter(self._models)))
                self._models[key] = model
            return model
