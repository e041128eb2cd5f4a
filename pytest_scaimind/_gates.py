"""Gate arithmetic: criteria, baselines, intervals, power and one-line verdicts (pure, no I/O).

Every statistic comes from `scaimind_nb.stats`, so a gate and a notebook comparison of the same
two evaluations agree. A gate is judged in two steps: `assess` turns its criteria into checks
(a point comparison, or with `confidence=` a two-sided interval against a bound), then
`Assessment.verdict` decides them, either each on its own interval or, under
`--scaimind-correction=holm`, from the family's Holm decisions (`holm_decisions`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_scaimind._record import Outcome
from scaimind_nb import Benchmark
from scaimind_nb.stats import (
    Difference,
    Interval,
    ItemOutcomes,
    Judgement,
    bound_pvalue,
    difference,
    holm,
    items_needed,
    judge_margin,
    mean_interval,
    minimum_detectable_effect,
    noninferiority_pvalue,
    samples_needed,
    wilson_interval,
)

POWER_REFERENCE_CONFIDENCE = 0.95
"""The confidence the power check quotes for a point gate (one without `confidence=`)."""
NO_CRITERION = (
    "sets no criterion: pass min_score=, max_drop= or max_rel_drop= "
    "(a gate that checks nothing always passes)"
)


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

    @property
    def has_criterion(self) -> bool:
        """Whether the gate checks anything (a `scaimind` marker only declares a spec)."""
        return self.min_score is not None or self.needs_baseline

    def key(self) -> tuple[Any, ...]:
        """A hashable identity: the spec's key and every criterion (the same hypothesis twice)."""
        return (
            self.spec.key(),
            self.min_score,
            self.max_drop,
            self.max_rel_drop,
            self.metric,
            self.confidence,
        )

    def margin(self, baseline: float | None) -> tuple[float, str]:
        """The strictest allowed drop against `baseline` and how it reads.

        `max_rel_drop` is relative to the baseline (`baseline * max_rel_drop`), so it only
        counts when the baseline is known.
        """
        margins = []
        if self.max_drop is not None:
            margins.append((float(self.max_drop), f"max_drop {self.max_drop:g}"))
        if self.max_rel_drop is not None and baseline is not None:
            margins.append(
                (
                    abs(baseline) * self.max_rel_drop,
                    f"max_rel_drop {self.max_rel_drop:g} of {baseline:.4f}",
                )
            )
        if not margins:
            raise ValueError("a margin needs max_drop, or max_rel_drop with a known baseline")
        return min(margins)


# --- what is compared --------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """The candidate's figures for one gate: the judged metric, its n, stderr and items."""

    metric: str
    score: float
    n: int | None
    evaluation_id: str | None
    stderr: float | None = None
    proportion: bool = False
    items: ItemOutcomes | None = None
    items_note: str = ""
    """Why there are no per-item outcomes (empty when there are, or none were asked for)."""


@dataclass(frozen=True)
class Reference:
    """The baseline a regression gate compares with, and what is known about its noise."""

    value: float
    source: str
    """Where it came from: `baseline file`, `evaluation eval_…`, `job job_… (evaluation eval_…)`."""
    n: int | None = None
    stderr: float | None = None
    items: ItemOutcomes | None = None
    items_note: str = ""


# --- checks and verdicts ------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One criterion of a confidence gate as a two-sided test: the interval and its bound.

    A `min_score` check bounds the score's interval (Wilson, or normal from a stderr); a
    regression check bounds the interval of Δ = candidate - baseline at -margin (paired or
    unpaired, `stats.difference`).
    """

    criterion: str
    bound: float
    interval: Interval
    interval_at: Callable[[float], Interval] = field(repr=False, compare=False)
    diff: Difference | None = None
    margin: float | None = None
    score: float | None = None
    """The score a min_score check is about (for the items that would decide it)."""
    proportion: bool = False

    def judgement(self) -> Judgement:
        """The verdict of this check alone, at its own confidence."""
        if self.diff is not None and self.margin is not None:
            return judge_margin(self.diff, self.margin)
        if self.interval.low >= self.bound:
            return Judgement.PASS
        if self.interval.high < self.bound:
            return Judgement.REGRESSED
        return Judgement.INCONCLUSIVE

    def pvalues(self) -> tuple[float, float]:
        """One-sided p-values (passes: the truth lies above the bound; fails: below it)."""
        if self.diff is not None and self.margin is not None:
            passes = noninferiority_pvalue(self.diff.at, self.margin)
        else:
            passes = bound_pvalue(self.interval_at, self.bound)
        return passes, bound_pvalue(self.interval_at, self.bound, above=False)

    def needed(self, confidence: float) -> int | None:
        """Items that would decide this check at `confidence` if the observed figures held."""
        if self.diff is not None and self.margin is not None:
            return items_needed(self.diff, self.margin, confidence)
        if self.proportion and self.score is not None:
            return samples_needed(self.score, self.bound, confidence)
        return None

    def describe(self, judgement: Judgement) -> str:
        """`95% CI [...] lies above 0.6000 [min_score 0.6] (delta ...)` or the Δ version."""
        relation = {
            Judgement.PASS: "lies above",
            Judgement.REGRESSED: "lies below",
            Judgement.INCONCLUSIVE: "straddles",
        }[judgement]
        if self.diff is None:
            delta = f" (delta {self.score - self.bound:+.4f})" if self.score is not None else ""
            verb = "clears" if judgement is Judgement.PASS else relation
            return f"{self.interval.format()} {verb} {self.bound:.4f} [{self.criterion}]{delta}"
        return f"Δ CI {relation} {self.bound:+.4f} [{self.criterion}] ({self.diff.describe()})"


@dataclass(frozen=True)
class Decision:
    """Holm's step-down decision on one check: which of its two one-sided nulls fell."""

    passes: bool
    fails: bool
    p_value: float
    """The one-sided p-value of "this check does not hold" (small: it passes)."""
    family_size: int
    """How many checks the family held."""
    confidence: float
    """The two-sided confidence each check is effectively judged at (for items needed)."""

    def judgement(self) -> Judgement:
        if self.passes:
            return Judgement.PASS
        if self.fails:
            return Judgement.REGRESSED
        return Judgement.INCONCLUSIVE


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
    interval: Interval | None = None
    """The score's own interval (confidence gates whose score has one)."""
    n_needed: int | None = None
    evaluation_id: str | None = None
    difference: Difference | None = None
    """The regression check's Δ = candidate - baseline with its interval (confidence gates)."""
    margin: float | None = None
    baseline_source: str | None = None
    p_value: float | None = None
    """One-sided p-value that the gate does not hold (the largest over its checks)."""
    corrected: Decision | None = None


@dataclass
class Assessment:
    """A gate's criteria made into checks against the measured figures, not yet decided.

    `verdict` decides it; `decided` is set instead when nothing is left to decide (a point gate,
    a missing baseline, a NaN score, a confidence gate without an interval).
    """

    gate: Gate
    measured: Measured
    reference: Reference | None
    checks: list[Check] = field(default_factory=list)
    decided: Verdict | None = None
    threshold: float | None = None
    why: str = ""

    def verdict(
        self,
        inconclusive: str = "fail",
        decisions: Mapping[int, Decision] | None = None,
    ) -> Verdict:
        """Decide: each check at its own confidence, or by `decisions` (check index -> Holm)."""
        if self.decided is not None:
            return self.decided
        gate, m = self.gate, self.measured
        judged: list[tuple[Check, Judgement, Decision | None]] = []
        for index, check in enumerate(self.checks):
            decision = decisions.get(index) if decisions is not None else None
            judged.append(
                (check, decision.judgement() if decision else check.judgement(), decision)
            )
        verdicts = {j for _, j, _ in judged}
        if Judgement.REGRESSED in verdicts:
            outcome, shown = Outcome.FAIL, Judgement.REGRESSED
        elif Judgement.INCONCLUSIVE in verdicts:
            outcome, shown = Outcome.INCONCLUSIVE, Judgement.INCONCLUSIVE
        else:
            outcome, shown = Outcome.PASS, Judgement.PASS
        parts, needed = [], []
        for check, judgement, decision in judged:
            if outcome is not Outcome.PASS and judgement is not shown:
                continue
            text = check.describe(check.judgement())
            if decision is not None:
                text += f"; Holm over {decision.family_size} checks: p={decision.p_value:.3g}, " + (
                    "decisive" if judgement is not Judgement.INCONCLUSIVE else "not decisive"
                )
            parts.append(text)
            if judgement is Judgement.INCONCLUSIVE:
                level = decision.confidence if decision else (gate.confidence or 0.95)
                needed.append(check.needed(level))
        head = _head(gate, m, self.reference)
        where = _where(m)
        regression = next((c for c in self.checks if c.diff is not None), None)
        score_check = next((c for c in self.checks if c.diff is None), None)
        n_needed = None
        if outcome is Outcome.INCONCLUSIVE:
            counts = [k for k in needed if k is not None]
            n_needed = max(counts) if counts and len(counts) == len(needed) else None
            need = (
                f"need n≈{n_needed:,} to decide"
                if n_needed
                else "the figures sit on the bound; more samples will not decide it"
            )
            message = (
                f"{head} inconclusive: {'; '.join(parts)}; {need} "
                f"(--scaimind-inconclusive={inconclusive}); {where}"
            )
        else:
            message = f"{head}: {'; '.join(parts)}; {where}"
        p_value = max(c.pvalues()[0] for c in self.checks)
        return Verdict(
            gate,
            outcome,
            message,
            metric=m.metric,
            score=m.score,
            threshold=self.threshold,
            baseline=self.reference.value if self.reference else None,
            delta=_delta(m, self.reference, self.threshold),
            n=m.n,
            interval=score_check.interval if score_check else _score_interval(m, gate),
            n_needed=n_needed,
            evaluation_id=m.evaluation_id,
            difference=regression.diff if regression else None,
            margin=regression.margin if regression else None,
            baseline_source=self.reference.source if self.reference else None,
            p_value=p_value,
            corrected=next((d for _, _, d in judged if d is not None), None),
        )


def _head(gate: Gate, m: Measured, reference: Reference | None) -> str:
    head = f"{label(gate.spec)} {m.metric} {m.score:.4f}"
    if reference is not None:
        head += f" vs baseline {reference.value:.4f} ({reference.source})"
    return head


def _where(m: Measured) -> str:
    return f"n={m.n if m.n is not None else '?'}, evaluation {m.evaluation_id or '?'}"


def _delta(m: Measured, reference: Reference | None, threshold: float | None) -> float | None:
    if reference is not None:
        return m.score - reference.value
    return m.score - threshold if threshold is not None else None


def _score_interval(m: Measured, gate: Gate) -> Interval | None:
    """The score's own interval at the gate's confidence: Wilson for proportions, else normal."""
    if gate.confidence is None:
        return None
    at = _score_interval_family(m)
    return at(gate.confidence) if at is not None else None


def _score_interval_family(m: Measured) -> Callable[[float], Interval] | None:
    if m.n and m.proportion:
        n, score = m.n, m.score
        return lambda level: wilson_interval(score, n, level)
    stderr = m.stderr
    if stderr is not None and stderr >= 0 and not math.isnan(stderr):
        return lambda level: mean_interval(m.score, stderr, level)
    return None


def assess(
    gate: Gate,
    measured: Measured,
    reference: Reference | None = None,
    *,
    baseline_missing: str = "",
    blessing: bool = False,
) -> Assessment:
    """Turn the gate's criteria into checks against the figures (see `Assessment.verdict`).

    Without `confidence=` every criterion is a point comparison (the strictest bound wins). With
    it, `min_score` bounds the score's interval and `max_drop`/`max_rel_drop` are one
    non-inferiority test on Δ = candidate - baseline at the strictest margin: paired where both
    sides' per-item outcomes exist and match, else unpaired from both sides' n and stderr.
    `blessing` (under --scaimind-update-baseline) leaves the regression criteria out: the run
    becomes the baseline.
    """
    m = measured
    out = Assessment(gate, m, reference)
    if gate.needs_baseline and reference is None and not blessing:
        out.decided = _settled(gate, m, Outcome.FAIL, f"{m.score:.4f}: {baseline_missing}")
        return out
    if math.isnan(m.score):
        out.decided = _settled(gate, m, Outcome.FAIL, "is NaN")
        return out
    if blessing and gate.min_score is None:
        out.decided = _settled(
            gate,
            m,
            Outcome.PASS,
            f"{m.score:.4f}: recorded as the new baseline (--scaimind-update-baseline)",
        )
        return out
    bounds: list[tuple[float, str]] = []
    if gate.min_score is not None:
        bounds.append((float(gate.min_score), f"min_score {gate.min_score:g}"))
    regression = reference if gate.needs_baseline and not blessing else None
    if regression is not None:
        margin, criterion = gate.margin(regression.value)
        bounds.append((regression.value - margin, f"baseline {regression.value:.4f} - {criterion}"))
    out.threshold, out.why = max(bounds)
    if gate.confidence is None:
        out.decided = _point_verdict(out)
        return out
    error = _add_checks(out, regression)
    if error is not None:
        out.decided = _settled(gate, m, Outcome.ERROR, f"{m.score:.4f}: {error}")
        out.decided.baseline = reference.value if reference else None
    return out


def _settled(gate: Gate, m: Measured, outcome: Outcome, what: str) -> Verdict:
    """A verdict reached without an interval: `{label} {metric} {what}; n=…, evaluation …`."""
    return Verdict(
        gate,
        outcome,
        f"{label(gate.spec)} {m.metric} {what}; {_where(m)}",
        metric=m.metric,
        score=m.score,
        n=m.n,
        evaluation_id=m.evaluation_id,
    )


def _point_verdict(out: Assessment) -> Verdict:
    gate, m, threshold = out.gate, out.measured, out.threshold
    assert threshold is not None
    delta = _delta(m, out.reference if gate.needs_baseline else None, threshold)
    ok = m.score >= threshold - 1e-12
    relation = ">=" if ok else "<"
    delta_text = f" (delta {delta:+.4f})" if delta is not None else ""
    message = (
        f"{label(gate.spec)} {m.metric} {m.score:.4f} {relation} {threshold:.4f} [{out.why}]"
        f"{delta_text}; {_where(m)}"
    )
    return Verdict(
        gate,
        Outcome.PASS if ok else Outcome.FAIL,
        message,
        metric=m.metric,
        score=m.score,
        threshold=threshold,
        baseline=out.reference.value if out.reference and gate.needs_baseline else None,
        delta=delta,
        n=m.n,
        evaluation_id=m.evaluation_id,
        baseline_source=out.reference.source if out.reference else None,
    )


def _add_checks(out: Assessment, reference: Reference | None) -> str | None:
    """Fill `out.checks` for a confidence gate; the reason when an interval cannot be had."""
    from scaimind_nb import ScaimindValueError

    gate, m = out.gate, out.measured
    assert gate.confidence is not None
    if gate.min_score is not None:
        family = _score_interval_family(m)
        if family is None:
            return (
                f"confidence={gate.confidence:g} needs a proportion metric with a known sample "
                "count or a reported stderr (set num_samples, or drop confidence=)"
            )
        out.checks.append(
            Check(
                f"min_score {gate.min_score:g}",
                float(gate.min_score),
                family(gate.confidence),
                family,
                score=m.score,
                proportion=m.proportion,
            )
        )
    if reference is not None:
        margin, criterion = gate.margin(reference.value)
        try:
            diff = difference(
                reference.value,
                m.score,
                gate.confidence,
                baseline_items=reference.items,
                candidate_items=m.items,
                n_baseline=reference.n,
                n_candidate=m.n,
                stderr_baseline=reference.stderr,
                stderr_candidate=m.stderr,
                proportion=m.proportion,
            )
        except ScaimindValueError as exc:
            return (
                f"confidence={gate.confidence:g} on {criterion} needs both sides' sample counts "
                f"or standard errors ({exc})"
            )
        note = _unpaired_note(m, reference) if not diff.paired else ""
        out.checks.append(
            Check(
                criterion + (f"; unpaired: {note}" if note else ""),
                -margin,
                diff.interval,
                lambda level: diff.at(level).interval,
                diff=diff,
                margin=margin,
            )
        )
    return None


def _unpaired_note(m: Measured, reference: Reference) -> str:
    """Why a regression check could not pair the two evaluations item by item."""
    if reference.items is None:
        return reference.items_note or "the baseline has no per-item outcomes"
    if m.items is None:
        return m.items_note or "the candidate has no per-item outcomes"
    return "the two evaluations do not score the same items"


def judge(
    gate: Gate,
    measured: Measured,
    reference: Reference | None = None,
    *,
    baseline_missing: str = "",
    inconclusive: str = "fail",
) -> Verdict:
    """Decide one gate on its own (no family correction): `assess` then `verdict`."""
    return assess(gate, measured, reference, baseline_missing=baseline_missing).verdict(
        inconclusive
    )


# --- many gates: Holm -------------------------------------------------------------------


def holm_decisions(
    assessments: Sequence[Assessment], confidence: float
) -> list[dict[int, Decision]]:
    """Holm-Bonferroni across every check of the given confidence gates.

    Each check is two one-sided hypotheses ("it holds", "it does not"); all of them go into
    one step-down procedure at family-wise error 1 - `confidence`, so the chance of any wrong
    decisive verdict in the session is at most what one gate alone has without correction.
    Returns, per assessment, check index -> Decision.
    """
    alpha = 1 - confidence
    entries: list[tuple[int, int, float, float]] = []
    for a_index, assessment in enumerate(assessments):
        if assessment.decided is not None:
            continue
        for c_index, check in enumerate(assessment.checks):
            entries.append((a_index, c_index, *check.pvalues()))
    pvalues = [p for *_, passes, fails in entries for p in (passes, fails)]
    rejected = holm(pvalues, alpha)
    size = len(entries)
    effective = 1 - alpha / size if size else confidence
    out: list[dict[int, Decision]] = [{} for _ in assessments]
    for k, (a_index, c_index, passes, _fails) in enumerate(entries):
        out[a_index][c_index] = Decision(
            rejected[2 * k], rejected[2 * k + 1], passes, size, effective
        )
    return out


# --- power -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Power:
    """How small a drop a regression gate can tell from noise, before anything is run."""

    gate: Gate
    n: int
    margin: float
    criterion: str
    confidence: float
    detectable: float
    """The smallest true drop detected at 80% power (`stats.minimum_detectable_effect`)."""
    basis: str
    """Where the per-item variance came from (discordance, stderr, or the worst case)."""

    @property
    def underpowered(self) -> bool:
        """True when the allowed drop is smaller than what the gate can tell from noise."""
        return self.margin < self.detectable

    @property
    def warning(self) -> str | None:
        """The one-line warning when underpowered, else None."""
        if not self.underpowered:
            return None
        text = (
            f"{label(self.gate.spec)} n={self.n}: {self.criterion} cannot be told from noise; "
            f"the smallest drop this gate can detect at {self.confidence:.0%} is about "
            f"{self.detectable:.3f} ({self.basis}); raise n or the margin"
        )
        if self.gate.confidence is None:
            text += " (a point comparison: its verdict on such a drop is noise)"
        return text


def power(
    gate: Gate,
    n: int | None,
    *,
    baseline: float | None = None,
    baseline_stderr: float | None = None,
    discordance: float | None = None,
    proportion: bool = True,
) -> Power | None:
    """The power check of a regression gate with a known n, else None.

    The per-item variance of Δ is, in order: the baseline's per-item discordance rate with the
    run before it (paired binary outcomes: Var(d) ≈ r); twice the baseline's per-item variance
    from its stderr (unpaired, no pairing gain assumed); for a proportion the worst case of
    independent errors near 50% (Var(d) = 0.5). A margin relative to an unknown baseline, or a
    metric that is not a proportion without a stderr, gives no estimate.
    """
    if not gate.needs_baseline or not n:
        return None
    if gate.max_drop is None and baseline is None:
        return None
    margin, criterion = gate.margin(baseline)
    confidence = gate.confidence or POWER_REFERENCE_CONFIDENCE
    variance: float | None
    if discordance is not None:
        variance, basis = discordance, f"from the baseline's per-item discordance {discordance:.3f}"
    elif baseline_stderr is not None and baseline_stderr > 0:
        variance = 2 * n * baseline_stderr**2
        basis = "from the baseline's stderr, assuming no pairing gain"
    elif proportion:
        variance, basis = None, "worst case: independent errors near 50%"
    else:
        return None
    detectable = minimum_detectable_effect(n, confidence, variance=variance)
    return Power(gate, n, margin, criterion, confidence, detectable, basis)


# --- building gates ----------------------------------------------------------------------

GATE_ARGS = ("min_score", "max_drop", "max_rel_drop", "metric", "confidence")
SPEC_ARGS = ("dataset", "num_samples", "parameters")


def make_gate(name: str, *, spec_only: bool = False, **kwargs: Any) -> Gate:
    """Build a gate from `assert_benchmark`'s arguments, validating them before any request.

    A gate must check something (`NO_CRITERION`); `spec_only=True` builds the spec a `scaimind`
    marker declares, which has no criterion of its own.
    """
    unknown = set(kwargs) - set(GATE_ARGS) - set(SPEC_ARGS)
    if unknown:
        raise ValueError(f"assert_benchmark got unknown argument(s) {', '.join(sorted(unknown))}")
    spec = Benchmark(name, **{k: kwargs[k] for k in SPEC_ARGS if kwargs.get(k) is not None})
    gate = Gate(spec, **{k: kwargs[k] for k in GATE_ARGS if kwargs.get(k) is not None})
    if not spec_only and not gate.has_criterion:
        raise ValueError(f"assert_benchmark({name!r}) {NO_CRITERION}")
    return gate
