"""Gate arithmetic: thresholds, baselines, Wilson intervals and one-line verdicts (pure, no I/O)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

from pytest_scaimind._record import Outcome
from scaimind_nb import Benchmark


def label(spec: Benchmark) -> str:
    """A readable, stable key of a spec: `name`, then `@dataset`, `[n=…]` and `{k=v,…}` when set."""
    name, dataset, num_samples, params = spec.key()
    text = name
    if dataset:
        text += f"@{dataset}"
    if num_samples is not None:
        text += f"[n={num_samples}]"
    if params:
        text += "{" + ",".join(f"{k}={v}" for k, v in params) + "}"
    return text


@dataclass(frozen=True)
class Gate:
    """One `assert_benchmark` call: its spec and what must hold."""

    spec: Benchmark
    min_score: float | None = None
    max_drop: float | None = None
    max_rel_drop: float | None = None
    metric: str | None = None
    confidence: float | None = None

    def __post_init__(self) -> None:
        for option in ("min_score", "max_drop", "max_rel_drop", "confidence"):
            value = getattr(self, option)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value)
            ):
                raise ValueError(f"{option} must be a number, got {value!r}")
        for option in ("max_drop", "max_rel_drop"):
            value = getattr(self, option)
            if value is not None and value < 0:
                raise ValueError(f"{option} is an allowed drop and must be >= 0, got {value!r}")
        if self.confidence is not None and not 0 < self.confidence < 1:
            raise ValueError(
                f"confidence must lie strictly between 0 and 1, e.g. 0.95, got {self.confidence!r}"
            )

    @property
    def needs_baseline(self) -> bool:
        """Whether the gate compares against a baseline value."""
        return self.max_drop is not None or self.max_rel_drop is not None


@dataclass
class Verdict:
    """The outcome of judging one gate, with every figure a report needs."""

    gate: Gate
    outcome: Outcome
    message: str
    metric: str | None = None
    score: float | None = None
    threshold: float | None = None
    baseline: float | None = None
    delta: float | None = None
    n: int | None = None
    interval: tuple[float, float] | None = None
    n_needed: int | None = None
    evaluation_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def wilson_interval(p: float, n: int, confidence: float) -> tuple[float, float]:
    """Two-sided Wilson score interval of a proportion `p` observed on `n` samples."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def samples_needed(p: float, threshold: float, confidence: float) -> int | None:
    """Roughly how many samples make the interval around `p` clear `threshold` (None: p == threshold)."""
    gap = abs(p - threshold)
    if gap < 1e-12:
        return None
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    n = max(1, math.ceil(z * z * max(p * (1 - p), 1e-4) / (gap * gap)))
    while not _decisive(p, n, threshold, confidence):
        n = math.ceil(n * 1.05) + 1
    return n


def _decisive(p: float, n: int, threshold: float, confidence: float) -> bool:
    """Whether the Wilson interval at n lies wholly on one side of the threshold."""
    low, high = wilson_interval(p, n, confidence)
    return low >= threshold if p > threshold else high < threshold


def judge(
    gate: Gate,
    *,
    metric: str,
    score: float,
    n: int | None,
    evaluation_id: str | None,
    baseline: float | None = None,
    baseline_missing: str = "",
    stderr: float | None = None,
    proportion: bool = False,
    inconclusive: str = "fail",
) -> Verdict:
    """Decide one gate: every set criterion must hold; with `confidence`, judge the interval."""
    name = label(gate.spec)
    where = f"n={n if n is not None else '?'}, evaluation {evaluation_id or '?'}"
    common: dict[str, Any] = {
        "metric": metric,
        "score": score,
        "n": n,
        "evaluation_id": evaluation_id,
    }
    if gate.needs_baseline and baseline is None:
        return Verdict(
            gate,
            Outcome.FAIL,
            f"{name} {metric} {score:.4f}: {baseline_missing}; {where}",
            **common,
        )
    if math.isnan(score):
        return Verdict(gate, Outcome.FAIL, f"{name} {metric} is NaN; {where}", **common)

    bounds: list[tuple[float, str]] = []
    if gate.min_score is not None:
        bounds.append((float(gate.min_score), f"min_score {gate.min_score:g}"))
    if baseline is not None and gate.max_drop is not None:
        bounds.append(
            (baseline - gate.max_drop, f"baseline {baseline:.4f} - max_drop {gate.max_drop:g}")
        )
    if baseline is not None and gate.max_rel_drop is not None:
        bounds.append(
            (
                baseline * (1 - gate.max_rel_drop),
                f"baseline {baseline:.4f} x (1 - max_rel_drop {gate.max_rel_drop:g})",
            )
        )
    threshold: float | None = None
    why = ""
    if bounds:
        threshold, why = max(bounds)
    delta: float | None = None
    if baseline is not None:
        delta = score - baseline
    elif threshold is not None:
        delta = score - threshold
    common.update(threshold=threshold, baseline=baseline, delta=delta)
    delta_text = f" (delta {delta:+.4f})" if delta is not None else ""
    if threshold is None:
        return Verdict(
            gate, Outcome.PASS, f"{name} {metric} {score:.4f}, no threshold set; {where}", **common
        )

    if gate.confidence is None:
        ok = score >= threshold - 1e-12
        relation = ">=" if ok else "<"
        message = (
            f"{name} {metric} {score:.4f} {relation} {threshold:.4f} [{why}]{delta_text}; {where}"
        )
        return Verdict(gate, Outcome.PASS if ok else Outcome.FAIL, message, **common)

    interval = _interval(proportion, score, n, stderr, gate.confidence)
    if interval is None:
        message = (
            f"{name} {metric} {score:.4f}: confidence={gate.confidence:g} needs a proportion metric with a "
            f"known sample count or a reported stderr (set num_samples, or drop confidence=); {where}"
        )
        return Verdict(gate, Outcome.ERROR, message, **common)
    low, high = interval
    ci = f"{gate.confidence:.0%} CI [{low:.4f}, {high:.4f}]"
    if low >= threshold:
        return Verdict(
            gate,
            Outcome.PASS,
            f"{name} {metric} {score:.4f}, {ci} clears {threshold:.4f} [{why}]{delta_text}; {where}",
            interval=interval,
            **common,
        )
    if high < threshold:
        return Verdict(
            gate,
            Outcome.FAIL,
            f"{name} {metric} {score:.4f}, {ci} lies below {threshold:.4f} [{why}]{delta_text}; {where}",
            interval=interval,
            **common,
        )
    needed = samples_needed(score, threshold, gate.confidence) if proportion and n else None
    need_text = (
        f"need n≈{needed:,} to decide"
        if needed
        else "the score sits on the threshold; more samples will not decide it"
    )
    message = (
        f"{name} {metric} {score:.4f} inconclusive: {ci} straddles {threshold:.4f} [{why}]{delta_text}; "
        f"{need_text} (--scaimind-inconclusive={inconclusive}); {where}"
    )
    return Verdict(
        gate, Outcome.INCONCLUSIVE, message, interval=interval, n_needed=needed, **common
    )


def _interval(
    proportion: bool, score: float, n: int | None, stderr: float | None, confidence: float
) -> tuple[float, float] | None:
    """Wilson for proportions with a known n, else a normal interval from a reported stderr."""
    if n and proportion:
        return wilson_interval(score, n, confidence)
    if stderr is not None and stderr >= 0 and not math.isnan(stderr):
        z = NormalDist().inv_cdf(0.5 + confidence / 2)
        return score - z * stderr, score + z * stderr
    return None


GATE_ARGS = ("min_score", "max_drop", "max_rel_drop", "metric", "confidence")
SPEC_ARGS = ("dataset", "num_samples", "parameters")


def make_gate(name: str, **kwargs: Any) -> Gate:
    """Build a gate from `assert_benchmark`'s arguments, validating them before any request."""
    unknown = set(kwargs) - set(GATE_ARGS) - set(SPEC_ARGS)
    if unknown:
        raise ValueError(f"assert_benchmark got unknown argument(s) {', '.join(sorted(unknown))}")
    spec = Benchmark(name, **{k: kwargs[k] for k in SPEC_ARGS if kwargs.get(k) is not None})
    return Gate(spec, **{k: kwargs[k] for k in GATE_ARGS if kwargs.get(k) is not None})
