"""This session against a reference (a history entry, an evaluation, a job, the baseline file).

Per gate: the reference value ("then"), this session's ("now"), Δ = now - then with its interval
(`scaimind_nb.stats.difference`: paired on per-item outcomes where both sides have them for
the same items, else unpaired from the figures), what changed, and the verdicts. Pure: the
session supplies the reference side (with its per-item outcomes, where known) and this
session's per-item outcomes through two callables.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_scaimind._record import GateRecord

if TYPE_CHECKING:
    from scaimind_nb.stats import ItemOutcomes

DEFAULT_CONFIDENCE = 0.95
"""Confidence of a comparison's interval when the gate sets none."""


@dataclass(frozen=True)
class Then:
    """The reference side of one gate."""

    value: float | None
    n: int | None = None
    stderr: float | None = None
    proportion: bool | None = None
    evaluation_id: str | None = None
    verdict: str | None = None
    """What the gate did then (history references only)."""
    note: str = ""
    """Why there is no value, when there is none."""
    items: ItemOutcomes | None = None
    """The reference's per-item outcomes of the compared metric, where known (pairing)."""


@dataclass
class Row:
    """One gate compared: then, now, Δ with its interval, what changed, the verdicts."""

    test: str
    benchmark: str
    metric: str | None
    then: float | None
    now: float | None
    delta: float | None = None
    low: float | None = None
    high: float | None = None
    confidence: float | None = None
    method: str | None = None
    paired: bool | None = None
    change: str = "not compared"
    """better or worse (the interval excludes 0), no clear change (it holds 0), same, higher or
    lower (no interval), or not compared."""
    then_verdict: str | None = None
    now_verdict: str | None = None
    then_evaluation_id: str | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Comparison:
    """The session compared with one reference."""

    reference: dict[str, Any]
    """`{ref, kind, label}` plus what identifies it (run id, evaluation id, job id, file)."""
    rows: list[Row] = field(default_factory=list)
    error: str | None = None
    """Why the reference could not be read at all (the rows are then empty)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "error": self.error,
            "rows": [r.to_json() for r in self.rows],
        }


ThenOf = Callable[[GateRecord], Then | None]
ItemsOf = Callable[[GateRecord], "ItemOutcomes | None"]
"""This session's per-item outcomes of a gate's metric (None where there are none)."""


def compare(records: list[GateRecord], then_of: ThenOf, items_of: ItemsOf) -> list[Row]:
    """One row per gate, in the records' order; differences are computed once per spec and metric."""
    cache: dict[tuple[Any, ...], Row] = {}
    rows = []
    for record in records:
        then = then_of(record)
        row = Row(
            record.test,
            record.benchmark,
            record.metric,
            then.value if then else None,
            record.score,
            then_verdict=then.verdict if then else None,
            now_verdict=record.action.value,
            then_evaluation_id=then.evaluation_id if then else None,
        )
        if then is None or then.value is None or record.score is None or record.metric is None:
            row.note = (then.note if then else "") or (
                "no result this session" if record.score is None else "not in the reference"
            )
            rows.append(row)
            continue
        key = (record.benchmark, record.metric, then.evaluation_id, then.value, record.score)
        if key not in cache:
            cache[key] = _difference(record, then, items_of)
        figures = cache[key]
        for name in ("delta", "low", "high", "confidence", "method", "paired", "change", "note"):
            setattr(row, name, getattr(figures, name))
        rows.append(row)
    return rows


def _difference(record: GateRecord, then: Then, items_of: ItemsOf) -> Row:
    """Δ = now - then with its interval, and what changed."""
    from scaimind_nb import ScaimindError
    from scaimind_nb.stats import difference

    assert record.score is not None and then.value is not None and record.metric is not None
    out = Row(record.test, record.benchmark, record.metric, then.value, record.score)
    out.delta = record.score - then.value
    confidence = record.confidence or DEFAULT_CONFIDENCE
    if then.evaluation_id is not None and then.evaluation_id == record.evaluation_id:
        out.delta, out.change, out.note = 0.0, "same", "the same evaluation"
        return out
    items_then = then.items
    items_now = items_of(record) if items_then is not None else None
    proportion = bool(record.proportion) and then.proportion is not False
    try:
        diff = difference(
            then.value,
            record.score,
            confidence,
            baseline_items=items_then,
            candidate_items=items_now,
            n_baseline=then.n,
            n_candidate=record.n,
            stderr_baseline=then.stderr,
            stderr_candidate=(record.stderr or {}).get(record.metric),
            proportion=proportion,
        )
    except ScaimindError as exc:
        out.note = f"no interval: {exc}"
        out.change = _change(out.delta, None, None)
        return out
    out.delta, out.low, out.high = diff.delta, diff.interval.low, diff.interval.high
    out.confidence, out.method, out.paired = confidence, diff.method, diff.paired
    out.change = _change(diff.delta, diff.interval.low, diff.interval.high)
    if diff.worse is not None and diff.better is not None:
        out.note = f"{diff.worse} worse / {diff.better} better of {diff.n} paired items"
    return out


def _change(delta: float, low: float | None, high: float | None) -> str:
    if math.isclose(delta, 0.0, abs_tol=1e-12) and (low is None or high is None or low == high):
        return "same"
    if low is None or high is None:
        return "higher (no interval)" if delta > 0 else "lower (no interval)"
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "no clear change"
