"""Intervals, paired and unpaired differences, power and multiplicity: the statistics of verdicts.

One module serves the pytest gates and the notebook comparisons, so a gate and a notebook
never disagree about the same two evaluations. Pure Python (``statistics.NormalDist``), no
numpy or scipy, so the gates stay cheap to import.

Methods and references:

- one proportion: the Wilson score interval (Wilson 1927), which keeps its coverage at small n
  and stays inside [0, 1]; a mean of graded scores: the normal interval of the mean;
- clustered standard errors when items share a unit such as an MMLU subject (Miller 2024,
  "Adding Error Bars to Evals", arXiv 2411.00640, section 2.2);
- the difference of two evaluations on the *same* items, paired: for binary outcomes Newcombe's
  score interval for a difference of paired proportions (Newcombe 1998, Statistics in Medicine
  17:2635-2650, method 10), widened by the clustered design effect where items are clustered;
  for graded outcomes the normal interval of the mean per-item difference with its (clustered)
  standard error (Miller 2024, section 4);
- the difference of two independent evaluations: Newcombe's hybrid score interval for two
  independent proportions (Newcombe 1998, Statistics in Medicine 17:873-890, method 10), else
  the normal interval from both standard errors;
- non-inferiority with a margin m: pass when the whole interval of the difference lies above -m,
  regressed when it lies wholly below, inconclusive otherwise, with the number of items that
  would decide it at 80% power;
- the minimum detectable effect of a comparison at a given n (Miller 2024, section 5);
- p-values by inverting an interval family, so a corrected verdict agrees with the interval the
  gate reports at one test;
- Holm-Bonferroni step-down control of the family-wise error across many gates (Holm 1979).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import TYPE_CHECKING

from ._errors import ScaimindValueError

if TYPE_CHECKING:
    from ._models import Sample

__all__ = [
    "DEFAULT_POWER",
    "Difference",
    "Interval",
    "ItemOutcomes",
    "Judgement",
    "bound_pvalue",
    "clustered_stderr",
    "difference",
    "familywise_error",
    "holm",
    "items_needed",
    "judge_margin",
    "mean_interval",
    "mean_stderr",
    "minimum_detectable_effect",
    "noninferiority_pvalue",
    "paired_difference",
    "samples_needed",
    "unpaired_difference",
    "wilson_interval",
    "z_value",
]

DEFAULT_POWER = 0.8
"""The power that "items needed" and "minimum detectable effect" figures are quoted at."""
_N01 = NormalDist()


def z_value(confidence: float) -> float:
    """The two-sided standard-normal quantile of ``confidence`` (1.96 at 0.95)."""
    _check_confidence(confidence)
    return _N01.inv_cdf(0.5 + confidence / 2)


def _check_confidence(confidence: float) -> None:
    if (
        isinstance(confidence, bool)
        or not isinstance(confidence, int | float)
        or not 0 < confidence < 1
    ):
        raise ScaimindValueError(
            f"confidence must lie strictly between 0 and 1, e.g. 0.95, got {confidence!r}"
        )


@dataclass(frozen=True)
class Interval:
    """A two-sided confidence interval and how it was computed."""

    low: float
    high: float
    confidence: float
    method: str

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high

    @property
    def excludes_zero(self) -> bool:
        """True when the interval lies wholly on one side of zero (a difference that is real)."""
        return self.low > 0 or self.high < 0

    def format(self, digits: int = 4) -> str:
        """``95% CI [0.5120, 0.6330]``."""
        return f"{self.confidence:.0%} CI [{self.low:.{digits}f}, {self.high:.{digits}f}]"


# --- one evaluation -------------------------------------------------------------------------


def wilson_interval(p: float, n: int, confidence: float) -> Interval:
    """Wilson score interval of a proportion ``p`` observed on ``n`` items."""
    if n < 1:
        raise ScaimindValueError(f"a proportion's interval needs n >= 1 items, got n={n}")
    low, high = _wilson(p, n, z_value(confidence))
    return Interval(low, high, confidence, "wilson")


def _wilson(p: float, n: float, z: float) -> tuple[float, float]:
    p = min(1.0, max(0.0, p))
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(max(0.0, p * (1 - p) / n + z * z / (4 * n * n))) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(mean: float, stderr: float, confidence: float) -> Interval:
    """Normal interval ``mean ± z·stderr`` (for graded scores or a reported standard error)."""
    if not stderr >= 0:
        raise ScaimindValueError(f"stderr must be a number >= 0, got {stderr!r}")
    z = z_value(confidence)
    return Interval(mean - z * stderr, mean + z * stderr, confidence, "normal")


def mean_stderr(scores: Sequence[float]) -> float | None:
    """Standard error of the mean (sample standard deviation over sqrt n); None when n < 2."""
    n = len(scores)
    if n < 2:
        return None
    m = math.fsum(scores) / n
    return math.sqrt(math.fsum((s - m) ** 2 for s in scores) / (n - 1) / n)


def clustered_stderr(scores: Sequence[float], clusters: Sequence[str]) -> float | None:
    """Standard error of the mean when items share clusters (Miller 2024, eq. for SE_clustered).

    ``SE_cl^2 = SE^2 + (1/n^2) * sum_c sum_i sum_{j != i} (s_ic - mean)(s_jc - mean)``: the naive
    standard error plus the within-cluster covariances. None when n < 2.
    """
    if len(scores) != len(clusters):
        raise ScaimindValueError("scores and clusters must have the same length")
    base = mean_stderr(scores)
    if base is None:
        return None
    n = len(scores)
    m = math.fsum(scores) / n
    sums: dict[str, float] = {}
    squares: dict[str, float] = {}
    for s, c in zip(scores, clusters, strict=True):
        sums[c] = sums.get(c, 0.0) + (s - m)
        squares[c] = squares.get(c, 0.0) + (s - m) ** 2
    cross = math.fsum(sums[c] ** 2 - squares[c] for c in sums)
    return math.sqrt(max(0.0, base * base + cross / (n * n)))


# --- per-item outcomes ----------------------------------------------------------------------


@dataclass(frozen=True)
class ItemOutcomes:
    """Per-item outcomes of one benchmark in one evaluation: item id -> score in [0, 1].

    Several samples of one item (HumanEval with n > 1) are averaged into one score. ``binary``
    is True when every score is 0 or 1; ``clusters`` maps item ids to their cluster (subject).
    """

    scores: Mapping[str, float]
    clusters: Mapping[str, str]

    @property
    def n(self) -> int:
        """How many items."""
        return len(self.scores)

    @property
    def binary(self) -> bool:
        """True when every outcome is 0 or 1 (right or wrong)."""
        return all(s in (0.0, 1.0) for s in self.scores.values())

    @property
    def mean(self) -> float:
        """The mean outcome (the accuracy, for binary outcomes); NaN for no items."""
        return math.fsum(self.scores.values()) / self.n if self.scores else math.nan

    @classmethod
    def from_samples(cls, samples: Iterable[Sample]) -> ItemOutcomes:
        """Outcomes from a coordinator's per-item records (samples without a score are skipped)."""
        totals: dict[str, list[float]] = {}
        clusters: dict[str, str] = {}
        for sample in samples:
            if sample.score is None:
                continue
            totals.setdefault(sample.item_id, []).append(sample.score)
            if sample.cluster is not None:
                clusters[sample.item_id] = sample.cluster
        return cls({k: math.fsum(v) / len(v) for k, v in totals.items()}, clusters)

    @classmethod
    def from_mapping(
        cls, scores: Mapping[str, float | bool], clusters: Mapping[str, str] | None = None
    ) -> ItemOutcomes:
        """Outcomes from ``{item_id: score or bool}`` (e.g. stored in a baseline file)."""
        out: dict[str, float] = {}
        for key, value in scores.items():
            score = float(value)
            if not 0.0 <= score <= 1.0:
                raise ScaimindValueError(
                    f"item {key!r}: an outcome must lie in [0, 1] (or be true/false), got {value!r}"
                )
            out[str(key)] = score
        return cls(out, dict(clusters or {}))

    def stderr(self) -> float | None:
        """Standard error of the mean outcome, clustered when the items have clusters."""
        ids = list(self.scores)
        values = [self.scores[i] for i in ids]
        if self.clusters and all(i in self.clusters for i in ids):
            return clustered_stderr(values, [self.clusters[i] for i in ids])
        return mean_stderr(values)


# --- two evaluations ------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """candidate - baseline, with its interval and what it was computed from."""

    delta: float
    interval: Interval
    paired: bool
    n: int
    """Items compared (paired), or the candidate's sample count (unpaired)."""
    n_baseline: int | None = None
    """The baseline's sample count (unpaired only)."""
    worse: int | None = None
    """Paired binary: items the baseline got right and the candidate wrong (b)."""
    better: int | None = None
    """Paired binary: items the baseline got wrong and the candidate right (c)."""
    variance: float | None = None
    """Per-item variance of the difference: items_needed and the power figures use it."""
    recompute: Callable[[float], Difference] | None = field(default=None, repr=False, compare=False)
    """The same comparison at another confidence, from the counts already taken (see ``at``)."""

    def at(self, confidence: float) -> Difference:
        """This comparison's difference at another ``confidence`` (same data, same method).

        Cheap: the per-item work is done once, so p-values (which invert the interval family)
        cost no pass over the items per step.
        """
        if self.recompute is None:
            raise ScaimindValueError("this Difference was built by hand and cannot be recomputed")
        return self.recompute(confidence)

    @property
    def method(self) -> str:
        """The interval's method, e.g. ``paired newcombe`` or ``unpaired normal``."""
        return self.interval.method

    def describe(self) -> str:
        """One line: method, Δ with its interval, discordant counts (paired binary) and n."""
        text = (
            f"{self.method}: Δ {self.delta:+.4f}, "
            f"{self.interval.confidence:.0%} CI [{self.interval.low:+.4f}, {self.interval.high:+.4f}]"
        )
        if self.worse is not None and self.better is not None:
            text += f", {self.worse} worse / {self.better} better of n={self.n} paired items"
        elif self.paired:
            text += f", n={self.n} paired items"
        else:
            text += f", n={self.n} vs {self.n_baseline if self.n_baseline is not None else '?'}"
        return text


def paired_difference(
    baseline: ItemOutcomes, candidate: ItemOutcomes, confidence: float
) -> Difference:
    """The paired difference on the items both evaluations scored.

    Raises ScaimindValueError when the two do not score the same items (the caller then falls
    back to an unpaired comparison and says so). Binary outcomes get Newcombe's method 10,
    widened by the clustered design effect where items carry clusters; graded outcomes get the
    normal interval of the mean difference with its (clustered) standard error.
    """
    ids = sorted(baseline.scores)
    if not ids or set(ids) != set(candidate.scores):
        only_base = len(set(baseline.scores) - set(candidate.scores))
        only_cand = len(set(candidate.scores) - set(baseline.scores))
        raise ScaimindValueError(
            f"the two evaluations do not score the same items ({only_base} only in the baseline, "
            f"{only_cand} only in the candidate), so they cannot be paired"
        )
    n = len(ids)
    base = [baseline.scores[i] for i in ids]
    cand = [candidate.scores[i] for i in ids]
    diffs = [c - b for b, c in zip(base, cand, strict=True)]
    delta = math.fsum(diffs) / n
    clusters = _common_clusters(ids, baseline, candidate)
    var = math.fsum((d - delta) ** 2 for d in diffs) / n
    se_naive = mean_stderr(diffs)
    se_cluster = clustered_stderr(diffs, clusters) if clusters is not None else None
    if baseline.binary and candidate.binary:
        worse = sum(1 for b, c in zip(base, cand, strict=True) if b > c)
        better = sum(1 for b, c in zip(base, cand, strict=True) if c > b)
        both = sum(1 for b, c in zip(base, cand, strict=True) if b == c == 1.0)
        neither = n - both - better - worse
        widen = 1.0
        method = "paired newcombe"
        if se_cluster is not None and se_naive and se_cluster > se_naive:
            widen = se_cluster / se_naive  # the square root of the design effect
            method = "paired newcombe, clustered"

        def binary_at(level: float) -> Difference:
            low, high = _newcombe_paired(both, better, worse, neither, z_value(level))
            low, high = delta - (delta - low) * widen, delta + (high - delta) * widen
            interval = Interval(max(-1.0, low), min(1.0, high), level, method)
            return Difference(delta, interval, True, n, None, worse, better, var, binary_at)

        return binary_at(confidence)
    se = (se_cluster if se_cluster is not None else se_naive) or 0.0
    graded = "paired normal, clustered" if se_cluster is not None else "paired normal"

    def graded_at(level: float) -> Difference:
        half = z_value(level) * se
        interval = Interval(delta - half, delta + half, level, graded)
        return Difference(delta, interval, True, n, variance=var, recompute=graded_at)

    return graded_at(confidence)


def _common_clusters(
    ids: Sequence[str], baseline: ItemOutcomes, candidate: ItemOutcomes
) -> list[str] | None:
    """Each item's cluster when every item has one (from either side), else None."""
    out = []
    for i in ids:
        cluster = baseline.clusters.get(i) or candidate.clusters.get(i)
        if cluster is None:
            return None
        out.append(cluster)
    return out if len(set(out)) > 1 else None


def _newcombe_paired(
    both: int, better: int, worse: int, neither: int, z: float
) -> tuple[float, float]:
    """Newcombe 1998 method 10 for p_candidate - p_baseline on paired binary outcomes.

    Cells: ``both`` right, ``better`` (candidate right only), ``worse`` (baseline right only),
    ``neither``. Built from the Wilson limits of each proportion and the phi correlation.
    """
    n = both + better + worse + neither
    p1, p2 = (both + better) / n, (both + worse) / n  # candidate, baseline
    l1, u1 = _wilson(p1, n, z)
    l2, u2 = _wilson(p2, n, z)
    denom = (both + better) * (worse + neither) * (both + worse) * (better + neither)
    phi = (both * neither - better * worse) / math.sqrt(denom) if denom > 0 else 0.0
    theta = p1 - p2
    dl = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    du = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return theta - dl, theta + du


def unpaired_difference(
    baseline: float,
    candidate: float,
    confidence: float,
    *,
    n_baseline: int | None = None,
    n_candidate: int | None = None,
    stderr_baseline: float | None = None,
    stderr_candidate: float | None = None,
    proportion: bool = False,
) -> Difference:
    """The difference of two independent evaluations, from their figures alone.

    Proportions with both sample counts get Newcombe's hybrid score interval (method 10 for
    independent proportions); otherwise both standard errors are needed for a normal interval
    (ScaimindValueError says what is missing). A baseline figure with neither n nor stderr is
    taken as exact (stderr 0), which the method name says.
    """
    delta = candidate - baseline
    z_value(confidence)  # refuse a bad confidence before anything else
    if proportion and n_baseline and n_candidate:
        n_c, n_b = n_candidate, n_baseline
        per_item = candidate * (1 - candidate) + baseline * (1 - baseline)

        def newcombe_at(level: float) -> Difference:
            z = z_value(level)
            l1, u1 = _wilson(candidate, n_c, z)
            l2, u2 = _wilson(baseline, n_b, z)
            low = delta - math.sqrt((candidate - l1) ** 2 + (u2 - baseline) ** 2)
            high = delta + math.sqrt((u1 - candidate) ** 2 + (baseline - l2) ** 2)
            interval = Interval(max(-1.0, low), min(1.0, high), level, "unpaired newcombe")
            return Difference(
                delta, interval, False, n_c, n_b, variance=per_item, recompute=newcombe_at
            )

        return newcombe_at(confidence)
    se_c = _stderr_of(candidate, n_candidate, stderr_candidate, proportion)
    if se_c is None:
        raise ScaimindValueError(
            "the candidate has neither a sample count of a proportion nor a standard error, "
            "so its difference to the baseline has no interval"
        )
    se_b = _stderr_of(baseline, n_baseline, stderr_baseline, proportion)
    method = "unpaired normal" if se_b is not None else "unpaired normal, baseline taken as exact"
    se = math.sqrt(se_c**2 + (se_b or 0.0) ** 2)
    var = se * se * n_candidate if n_candidate else None

    def normal_at(level: float) -> Difference:
        z = z_value(level)
        interval = Interval(delta - z * se, delta + z * se, level, method)
        return Difference(
            delta, interval, False, n_candidate or 0, n_baseline, variance=var, recompute=normal_at
        )

    return normal_at(confidence)


def _stderr_of(value: float, n: int | None, stderr: float | None, proportion: bool) -> float | None:
    if stderr is not None and stderr >= 0 and not math.isnan(stderr):
        return stderr
    if proportion and n:
        return math.sqrt(max(value * (1 - value), 0.0) / n)
    return None


def difference(
    baseline: float,
    candidate: float,
    confidence: float,
    *,
    baseline_items: ItemOutcomes | None = None,
    candidate_items: ItemOutcomes | None = None,
    n_baseline: int | None = None,
    n_candidate: int | None = None,
    stderr_baseline: float | None = None,
    stderr_candidate: float | None = None,
    proportion: bool = False,
) -> Difference:
    """Paired where both sides' per-item outcomes exist and match, else unpaired from the figures.

    This is the choice every verdict (a gate, a notebook comparison) makes, in one place; the
    returned Difference's ``paired`` and ``method`` say which was used.
    """
    if baseline_items is not None and candidate_items is not None:
        try:
            return paired_difference(baseline_items, candidate_items, confidence)
        except ScaimindValueError:
            pass
    return unpaired_difference(
        baseline,
        candidate,
        confidence,
        n_baseline=n_baseline,
        n_candidate=n_candidate,
        stderr_baseline=stderr_baseline,
        stderr_candidate=stderr_candidate,
        proportion=proportion,
    )


# --- verdicts, power, multiplicity --------------------------------------------------------


class Judgement(enum.StrEnum):
    """A non-inferiority verdict on a difference."""

    PASS = "pass"
    REGRESSED = "regressed"
    INCONCLUSIVE = "inconclusive"


def judge_margin(diff: Difference, margin: float) -> Judgement:
    """Non-inferiority with margin m: pass above -m, regressed wholly below -m, else inconclusive."""
    if diff.interval.low > -margin:
        return Judgement.PASS
    if diff.interval.high < -margin:
        return Judgement.REGRESSED
    return Judgement.INCONCLUSIVE


def items_needed(
    diff: Difference, margin: float, confidence: float, power: float = DEFAULT_POWER
) -> int | None:
    """Items that would decide an inconclusive non-inferiority test: (z_a/2 + z_b)^2 Var(d) / (Δ + m)^2.

    None when the observed difference sits exactly on -m (no n decides it) or the per-item
    variance is unknown.
    """
    gap = diff.delta + margin
    if diff.variance is None or abs(gap) < 1e-12:
        return None
    z = z_value(confidence) + _N01.inv_cdf(power)
    return max(1, math.ceil(z * z * diff.variance / (gap * gap)))


def minimum_detectable_effect(
    n: int,
    confidence: float,
    *,
    variance: float | None = None,
    power: float = DEFAULT_POWER,
) -> float:
    """The smallest true difference a comparison of ``n`` items detects at ``power``.

    ``(z_a/2 + z_b) * sqrt(Var(d) / n)``. For paired binary outcomes Var(d) is about the
    discordance rate r (share of items on which the two disagree); without it the worst case
    for two evaluations near 50% is Var(d) = 0.5 (independent errors, no pairing gain).
    """
    if n < 1:
        raise ScaimindValueError(f"n must be at least 1, got {n}")
    var = 0.5 if variance is None else variance
    return (z_value(confidence) + _N01.inv_cdf(power)) * math.sqrt(var / n)


def samples_needed(p: float, threshold: float, confidence: float) -> int | None:
    """Roughly the smallest n at which the Wilson interval around ``p`` clears ``threshold``.

    The one-evaluation twin of ``items_needed``: for an inconclusive ``min_score`` gate, how
    many items would put the whole interval on one side of the threshold if the observed
    proportion held. None when ``p`` sits on the threshold (no n decides it).
    """
    gap = abs(p - threshold)
    if gap < 1e-12:
        return None
    z = z_value(confidence)
    n = max(1, math.ceil(z * z * max(p * (1 - p), 1e-4) / (gap * gap)))
    while not _wilson_decides(p, n, threshold, z):
        n = math.ceil(n * 1.05) + 1
    return n


def _wilson_decides(p: float, n: int, threshold: float, z: float) -> bool:
    low, high = _wilson(p, n, z)
    return low >= threshold if p > threshold else high < threshold


def bound_pvalue(
    interval_at: Callable[[float], Interval],
    bound: float,
    *,
    above: bool = True,
    tolerance: float = 1e-6,
) -> float:
    """One-sided p-value that the true value lies above ``bound`` (``above=False``: below it).

    Found by inverting the interval family ``interval_at(confidence)``: with c* the confidence
    at which the interval's limit meets the bound, p = (1 - c*)/2, so "the two-sided interval at
    confidence c lies wholly above the bound" is exactly "p < (1 - c)/2", whichever interval
    method is used. The null hypothesis is "the true value lies on the other side"; a point
    estimate on that side gives 1.0 (no evidence; Holm's procedure only needs small p-values
    exactly).
    """

    def clears(level: float) -> bool:
        interval = interval_at(level)
        return interval.low > bound if above else interval.high < bound

    lo, hi = 1e-9, 1 - 1e-9
    if not clears(lo):
        return 1.0
    if clears(hi):
        return (1 - hi) / 2
    while hi - lo > tolerance:
        mid = (lo + hi) / 2
        if clears(mid):
            lo = mid
        else:
            hi = mid
    return (1 - lo) / 2


def noninferiority_pvalue(
    diff_at: Callable[[float], Difference], margin: float, *, tolerance: float = 1e-6
) -> float:
    """One-sided p-value of "the candidate is worse by at least the margin" (H0: Δ <= -m).

    ``bound_pvalue`` on the difference's interval family (``Difference.at`` is one), so it
    matches whichever interval method the gate uses: pass at confidence c is p < (1 - c)/2.
    """
    return bound_pvalue(lambda c: diff_at(c).interval, -margin, tolerance=tolerance)


def familywise_error(levels: Sequence[float]) -> tuple[float, float]:
    """The chance of at least one wrong verdict among tests run at error ``levels`` each.

    Returns ``(independent, bound)``: ``1 - prod(1 - a_i)`` when the tests are independent,
    and Bonferroni's ``min(1, sum a_i)``, which holds whatever their dependence.
    """
    independent = 1.0 - math.prod(1.0 - a for a in levels)
    return independent, min(1.0, math.fsum(levels))


def holm(pvalues: Sequence[float], alpha: float) -> list[bool]:
    """Holm-Bonferroni step-down: which hypotheses are rejected at family-wise error ``alpha``."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    rejected = [False] * len(pvalues)
    m = len(pvalues)
    for rank, index in enumerate(order):
        if pvalues[index] > alpha / (m - rank):
            break
        rejected[index] = True
    return rejected
