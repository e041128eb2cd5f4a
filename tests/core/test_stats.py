"""scaimind_nb.stats: intervals against scipy, clustered errors against their definition, the paired
and unpaired differences' coverage on simulated evaluations, verdicts, power and Holm."""

from __future__ import annotations

import math
import random

import pytest

from scaimind_nb import ScaimindValueError
from scaimind_nb.stats import (
    Interval,
    ItemOutcomes,
    Judgement,
    bound_pvalue,
    clustered_stderr,
    difference,
    familywise_error,
    holm,
    items_needed,
    judge_margin,
    mean_interval,
    mean_stderr,
    minimum_detectable_effect,
    noninferiority_pvalue,
    paired_difference,
    samples_needed,
    score_interval,
    unpaired_difference,
    wilson_interval,
    z_value,
)


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (117, 164), (8000, 14042)])
def test_wilson_matches_scipy(k: int, n: int) -> None:
    import scipy.stats as scipy_stats

    ref = scipy_stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    ours = wilson_interval(k / n, n, 0.95)
    assert ours.low == pytest.approx(ref.low, abs=1e-9)
    assert ours.high == pytest.approx(ref.high, abs=1e-9)
    assert ours.method == "wilson" and 0.0 <= ours.low <= ours.high <= 1.0


def test_score_interval_is_wilson_for_proportions_else_normal_from_stderr() -> None:
    assert score_interval(0.7, 0.95, n=40, stderr=0.2, proportion=True) == wilson_interval(
        0.7, 40, 0.95
    )
    normal = score_interval(12.5, 0.95, n=40, stderr=0.5)
    assert normal == mean_interval(12.5, 0.5, 0.95) and normal.method == "normal"
    assert score_interval(0.7, 0.95, n=40) is None  # not a proportion and no stderr
    assert score_interval(0.7, 0.95, stderr=math.nan) is None
    assert score_interval(0.7, 0.95, proportion=True) is None  # a proportion of unknown n


def test_bad_confidence_and_n_are_refused_in_one_line() -> None:
    for confidence in (0, 1, 95, -0.1, True):
        with pytest.raises(ScaimindValueError, match=r"strictly between 0 and 1, e\.g\. 0\.95"):
            z_value(confidence)
    with pytest.raises(ScaimindValueError, match="n >= 1"):
        wilson_interval(0.5, 0, 0.95)
    with pytest.raises(ScaimindValueError, match="stderr"):
        mean_interval(0.5, -1.0, 0.95)


def test_clustered_stderr_follows_its_definition() -> None:
    rng = random.Random(3)
    clusters = [f"s{i % 7}" for i in range(140)]
    effect = {c: rng.random() for c in set(clusters)}
    scores = [float(rng.random() < effect[c]) for c in clusters]
    n, m = len(scores), sum(scores) / len(scores)
    naive = mean_stderr(scores)
    assert naive is not None
    cross = sum(
        (scores[i] - m) * (scores[j] - m)
        for i in range(n)
        for j in range(n)
        if i != j and clusters[i] == clusters[j]
    )
    expected = math.sqrt(naive**2 + cross / n**2)
    assert clustered_stderr(scores, clusters) == pytest.approx(expected, rel=1e-12)
    assert expected > naive  # subjects that differ make the naive error too small
    # one item per cluster: nothing is shared, the naive error stands
    assert clustered_stderr(scores, [str(i) for i in range(n)]) == pytest.approx(naive)
    assert mean_stderr([1.0]) is None and clustered_stderr([1.0], ["a"]) is None


def _pair(
    rng: random.Random, n: int, p_base: float, delta: float, discordance: float
) -> tuple[ItemOutcomes, ItemOutcomes]:
    """Simulated baseline/candidate on the same n items with a given discordance rate."""
    # discordant items split so that candidate - baseline = delta in expectation
    better, worse = (discordance + delta) / 2, (discordance - delta) / 2
    base, cand = {}, {}
    for i in range(n):
        u = rng.random()
        b = float(rng.random() < p_base)
        if u < better:
            b, c = 0.0, 1.0
        elif u < better + worse:
            b, c = 1.0, 0.0
        else:
            c = b
        base[f"q{i}"], cand[f"q{i}"] = b, c
    return ItemOutcomes.from_mapping(base), ItemOutcomes.from_mapping(cand)


@pytest.mark.parametrize(("n", "delta"), [(164, 0.0), (500, -0.03), (1000, 0.02)])
def test_paired_newcombe_covers_the_true_difference(n: int, delta: float) -> None:
    rng = random.Random(n)
    runs, covered, widths_paired, widths_unpaired = 1000, 0, [], []
    for _ in range(runs):
        base, cand = _pair(rng, n, 0.6, delta, 0.15)
        diff = paired_difference(base, cand, 0.95)
        covered += diff.interval.low <= delta <= diff.interval.high
        widths_paired.append(diff.interval.high - diff.interval.low)
        unpaired = unpaired_difference(
            base.mean, cand.mean, 0.95, n_baseline=n, n_candidate=n, proportion=True
        )
        widths_unpaired.append(unpaired.interval.high - unpaired.interval.low)
    assert covered / runs >= 0.93
    # pairing is the point: on correlated items the paired interval is much narrower
    assert sum(widths_paired) < 0.6 * sum(widths_unpaired)


def test_paired_difference_reports_discordant_counts_and_method() -> None:
    base = ItemOutcomes.from_mapping({"a": 1, "b": 1, "c": 0, "d": 0, "e": 1})
    cand = ItemOutcomes.from_mapping({"a": 1, "b": 0, "c": 1, "d": 1, "e": 1})
    diff = paired_difference(base, cand, 0.95)
    assert (diff.worse, diff.better, diff.n, diff.paired) == (1, 2, 5, True)
    assert diff.delta == pytest.approx(0.2) and diff.method == "paired newcombe"
    assert "1 worse / 2 better of n=5 paired items" in diff.describe()
    swapped = paired_difference(cand, base, 0.95)
    assert swapped.interval.low == pytest.approx(-diff.interval.high)
    assert swapped.interval.high == pytest.approx(-diff.interval.low)
    same = paired_difference(base, base, 0.95)
    assert same.delta == 0.0 and 0.0 in same.interval and not same.interval.excludes_zero


def test_clustered_items_widen_the_paired_interval() -> None:
    rng = random.Random(11)
    base, cand = _pair(rng, 600, 0.6, -0.02, 0.2)
    # a subject-level effect: the candidate lost whole subjects together
    clusters = {k: f"subject{int(k[1:]) // 60}" for k in base.scores}
    shifted = dict(cand.scores)
    for k in base.scores:
        if clusters[k] in ("subject0", "subject1"):
            shifted[k] = 0.0
    plain = paired_difference(base, ItemOutcomes.from_mapping(shifted), 0.95)
    clustered = paired_difference(
        ItemOutcomes.from_mapping(base.scores, clusters),
        ItemOutcomes.from_mapping(shifted, clusters),
        0.95,
    )
    assert clustered.method == "paired newcombe, clustered"
    assert clustered.delta == plain.delta
    assert (
        clustered.interval.high - clustered.interval.low > plain.interval.high - plain.interval.low
    )


def test_graded_outcomes_get_a_paired_normal_interval() -> None:
    base = ItemOutcomes.from_mapping({"p1": 0.5, "p2": 1.0, "p3": 0.25, "p4": 0.75})
    cand = ItemOutcomes.from_mapping({"p1": 0.75, "p2": 1.0, "p3": 0.5, "p4": 0.75})
    diff = paired_difference(base, cand, 0.95)
    d = [0.25, 0.0, 0.25, 0.0]
    se = mean_stderr(d)
    assert diff.method == "paired normal" and diff.worse is None
    assert diff.interval.low == pytest.approx(0.125 - 1.959964 * se, abs=1e-5)


def test_mismatched_items_cannot_be_paired_and_fall_back_to_unpaired() -> None:
    base = ItemOutcomes.from_mapping({"a": 1, "b": 0})
    cand = ItemOutcomes.from_mapping({"a": 1, "c": 1})
    with pytest.raises(ScaimindValueError, match="1 only in the baseline, 1 only in the candidate"):
        paired_difference(base, cand, 0.95)
    diff = difference(
        0.5,
        1.0,
        0.95,
        baseline_items=base,
        candidate_items=cand,
        n_baseline=2,
        n_candidate=2,
        proportion=True,
    )
    assert not diff.paired and diff.method == "unpaired newcombe"
    with pytest.raises(ScaimindValueError, match="neither a sample count"):
        unpaired_difference(0.5, 0.6, 0.95)
    exact = unpaired_difference(7.0, 7.5, 0.95, stderr_candidate=0.1)
    assert exact.method == "unpaired normal, baseline taken as exact"
    assert exact.interval.low == pytest.approx(0.5 - 1.959964 * 0.1, abs=1e-5)


def test_noninferiority_verdicts_and_the_items_that_would_decide() -> None:
    def at(low: float, high: float, delta: float = 0.0) -> object:
        from scaimind_nb.stats import Difference

        return Difference(delta, Interval(low, high, 0.95, "x"), True, 100, variance=0.15)

    assert judge_margin(at(-0.01, 0.02), 0.02) is Judgement.PASS  # type: ignore[arg-type]
    assert judge_margin(at(-0.09, -0.05, -0.07), 0.02) is Judgement.REGRESSED  # type: ignore[arg-type]
    undecided = at(-0.04, 0.01, -0.015)
    assert judge_margin(undecided, 0.02) is Judgement.INCONCLUSIVE  # type: ignore[arg-type]
    needed = items_needed(undecided, 0.02, 0.95)  # type: ignore[arg-type]
    # (1.96 + 0.84)^2 * 0.15 / 0.005^2
    assert needed == math.ceil((z_value(0.95) + 0.841621) ** 2 * 0.15 / 0.005**2)
    assert items_needed(at(-0.05, 0.01, -0.02), 0.02, 0.95) is None  # type: ignore[arg-type]


def test_minimum_detectable_effect_matches_the_rule_of_thumb() -> None:
    # about 2.8 sqrt(r / n): HumanEval at 15% discordance cannot see a 2-point drop
    mde = minimum_detectable_effect(164, 0.95, variance=0.15)
    assert mde == pytest.approx(2.8 * math.sqrt(0.15 / 164), rel=0.01)
    assert 0.08 < mde < 0.09
    assert minimum_detectable_effect(14042, 0.95, variance=0.15) < 0.01
    # without the discordance: the worst case of independent errors near 50%
    assert minimum_detectable_effect(164, 0.95) > mde


def test_noninferiority_pvalue_inverts_the_interval() -> None:
    se, delta, margin = 0.01, -0.005, 0.02

    def diff_at(confidence: float) -> object:
        return unpaired_difference(0.0, delta, confidence, stderr_candidate=se)

    p = noninferiority_pvalue(diff_at, margin)  # type: ignore[arg-type]
    from statistics import NormalDist

    assert p == pytest.approx(1 - NormalDist().cdf((delta + margin) / se), abs=1e-5)
    assert (
        noninferiority_pvalue(
            lambda c: unpaired_difference(0.0, -0.05, c, stderr_candidate=se), margin
        )
        == 1.0
    )  # type: ignore[arg-type]


def test_holm_step_down() -> None:
    # Holm 1979: reject while p_(i) <= alpha / (m - i + 1)
    assert holm([0.01, 0.04, 0.03, 0.005], 0.05) == [True, False, False, True]
    assert holm([0.001, 0.011, 0.02, 0.04], 0.05) == [True, True, True, True]
    assert holm([0.2, 0.3], 0.05) == [False, False]
    assert holm([], 0.05) == []


def test_a_difference_recomputed_at_another_confidence_equals_a_fresh_one() -> None:
    rng = random.Random(5)
    base, cand = _pair(rng, 300, 0.7, -0.02, 0.15)
    clusters = {k: f"s{int(k[1:]) % 6}" for k in base.scores}
    graded_base = ItemOutcomes.from_mapping({k: v / 2 for k, v in base.scores.items()})
    cases = [
        lambda c: paired_difference(base, cand, c),
        lambda c: paired_difference(
            ItemOutcomes.from_mapping(base.scores, clusters),
            ItemOutcomes.from_mapping(cand.scores, clusters),
            c,
        ),
        lambda c: paired_difference(graded_base, cand, c),
        lambda c: unpaired_difference(
            0.7, 0.66, c, n_baseline=300, n_candidate=250, proportion=True
        ),
        lambda c: unpaired_difference(7.0, 7.2, c, stderr_baseline=0.1, stderr_candidate=0.2),
    ]
    for build in cases:
        first = build(0.95)
        for level in (0.5, 0.9, 0.999):
            again, fresh = first.at(level), build(level)
            assert again.interval == fresh.interval and again.delta == fresh.delta
            assert (again.worse, again.better, again.n) == (fresh.worse, fresh.better, fresh.n)
    hand_made = paired_difference(base, cand, 0.95).__class__(
        0.0, Interval(-1, 1, 0.95, "x"), True, 3
    )
    with pytest.raises(ScaimindValueError, match="cannot be recomputed"):
        hand_made.at(0.9)


@pytest.mark.parametrize("above", [True, False])
def test_bound_pvalue_is_the_level_at_which_the_interval_meets_the_bound(above: bool) -> None:
    from statistics import NormalDist

    mean, se, bound = (0.62, 0.02, 0.58) if above else (0.55, 0.02, 0.58)
    p = bound_pvalue(lambda c: mean_interval(mean, se, c), bound, above=above)
    assert p == pytest.approx(1 - NormalDist().cdf(abs(mean - bound) / se), abs=1e-6)
    # the verdict at any confidence follows from the p-value: p < (1 - c)/2 <=> interval clears
    for level in (0.8, 0.9, 0.95, 0.99):
        interval = mean_interval(mean, se, level)
        clears = interval.low > bound if above else interval.high < bound
        assert clears == (p < (1 - level) / 2)
    # wrong side: no evidence at all
    assert bound_pvalue(lambda c: mean_interval(mean, se, c), bound, above=not above) == 1.0


def test_bound_pvalue_on_wilson_agrees_with_the_wilson_verdicts() -> None:
    p = bound_pvalue(lambda c: wilson_interval(0.66, 400, c), 0.6)
    for level in (0.9, 0.95, 0.99):
        assert (wilson_interval(0.66, 400, level).low > 0.6) == (p < (1 - level) / 2)


def test_samples_needed_is_the_smallest_decisive_n_roughly() -> None:
    n = samples_needed(0.62, 0.60, 0.95)
    assert n is not None
    assert wilson_interval(0.62, n, 0.95).low >= 0.60
    assert wilson_interval(0.62, int(n * 0.9), 0.95).low < 0.60
    below = samples_needed(0.55, 0.60, 0.95)
    assert below is not None and wilson_interval(0.55, below, 0.95).high < 0.60
    assert samples_needed(0.6, 0.6, 0.95) is None


def test_familywise_error_of_ten_gates_at_95_percent() -> None:
    independent, bound = familywise_error([0.05] * 10)
    assert independent == pytest.approx(1 - 0.95**10) and 0.40 < independent < 0.41
    assert bound == pytest.approx(0.5)
    assert familywise_error([0.3] * 5)[1] == 1.0
    assert familywise_error([]) == (0.0, 0.0)
