"""Gate arithmetic: point criteria, confidence verdicts, paired regression checks, Holm, power."""

from __future__ import annotations

import math
import random

import pytest

from pytest_scaimind._gates import (
    Measured,
    Reference,
    assess,
    holm_decisions,
    judge,
    label,
    make_gate,
    power,
)
from scaimind_nb.stats import ItemOutcomes, items_needed, paired_difference


def _m(score: float, n: int | None = None, **extra) -> Measured:
    return Measured(extra.pop("metric", "accuracy"), score, n, extra.pop("eid", "e"), **extra)


def test_min_score_pass_and_fail_messages_carry_every_figure():
    gate = make_gate("mmlu", min_score=0.6, num_samples=1000)
    ok = judge(gate, _m(0.65, 1000, eid="eval_1"))
    assert ok.outcome == "pass"
    bad = judge(gate, _m(0.581, 1000, eid="eval_9"))
    assert bad.outcome == "fail"
    assert "\n" not in bad.message
    for part in ("mmlu", "accuracy", "0.5810", "0.6000", "-0.0190", "n=1000", "eval_9"):
        assert part in bad.message


def test_all_point_criteria_must_hold_and_the_strictest_wins():
    gate = make_gate("humaneval", min_score=0.2, max_drop=0.02, max_rel_drop=0.5)
    verdict = judge(gate, _m(0.31, 164, metric="pass@1"), Reference(0.34, "baseline file"))
    assert verdict.outcome == "fail"
    assert math.isclose(verdict.threshold or 0, 0.32)
    assert math.isclose(verdict.delta or 0, -0.03)
    assert "baseline 0.3400" in verdict.message and "max_drop 0.02" in verdict.message
    assert judge(gate, _m(0.33, 164), Reference(0.34, "baseline file")).outcome == "pass"


def test_relative_drop_is_relative_to_the_baseline():
    gate = make_gate("mmlu", max_rel_drop=0.1)
    assert judge(gate, _m(0.55), Reference(0.6, "baseline file")).outcome == "pass"
    failed = judge(gate, _m(0.53), Reference(0.6, "baseline file"))
    assert failed.outcome == "fail" and "max_rel_drop 0.1 of 0.6000" in failed.message


def test_missing_baseline_fails_with_the_hint():
    gate = make_gate("mmlu", max_drop=0.01)
    verdict = judge(gate, _m(0.5, 10), baseline_missing="run --scaimind-update-baseline")
    assert verdict.outcome == "fail"
    assert "--scaimind-update-baseline" in verdict.message


@pytest.mark.parametrize(
    ("score", "n", "outcome"),
    [(0.70, 2000, "pass"), (0.50, 2000, "fail"), (0.62, 200, "inconclusive")],
)
def test_confidence_min_score_three_verdicts(score, n, outcome):
    gate = make_gate("mmlu", min_score=0.6, confidence=0.95)
    verdict = judge(gate, _m(score, n, proportion=True))
    assert verdict.outcome == outcome
    assert verdict.interval is not None and verdict.interval.method == "wilson"
    if outcome == "inconclusive":
        assert verdict.n_needed and verdict.n_needed > n
        assert f"need n≈{verdict.n_needed:,}" in verdict.message


def test_confidence_uses_reported_stderr_for_non_proportions():
    gate = make_gate("mt-bench", min_score=7.0, metric="rating", confidence=0.95)
    verdict = judge(gate, _m(7.5, 80, metric="rating", stderr=0.1))
    assert verdict.outcome == "pass" and verdict.interval and verdict.interval.method == "normal"
    unknown = judge(gate, _m(7.5, 80, metric="rating"))
    assert unknown.outcome == "error" and "num_samples" in unknown.message


# --- paired regression checks -------------------------------------------------------------


def _items(n: int, right: set[int]) -> ItemOutcomes:
    return ItemOutcomes.from_mapping({str(i): float(i in right) for i in range(n)})


N = 200
BASE = set(range(160))  # 0.80


def _regression(candidate: set[int], *, paired: bool = True, margin: float = 0.05):
    gate = make_gate(
        "custom-qa", dataset="scaidrive://o/qa.jsonl", max_drop=margin, confidence=0.95
    )
    base, cand = _items(N, BASE), _items(N, candidate)
    measured = _m(
        cand.mean, N, metric="exact_match", proportion=True, items=cand if paired else None
    )
    reference = Reference(base.mean, "baseline file", N, None, base if paired else None)
    return gate, measured, reference


def test_an_unchanged_rerun_passes_paired_where_unpaired_cannot_decide():
    paired = judge(*_regression(BASE))
    assert paired.outcome == "pass"
    assert paired.difference is not None and paired.difference.method == "paired newcombe"
    assert "0 worse / 0 better of n=200 paired items" in paired.message
    assert "Δ CI lies above -0.0500 [max_drop 0.05]" in paired.message
    unpaired = judge(*_regression(BASE, paired=False))
    assert unpaired.outcome == "inconclusive"
    assert unpaired.difference is not None and unpaired.difference.method == "unpaired newcombe"
    assert "unpaired: the baseline has no per-item outcomes" in unpaired.message
    assert unpaired.n_needed and f"need n≈{unpaired.n_needed:,} to decide" in unpaired.message


def test_a_real_drop_regresses_paired_where_unpaired_cannot_decide():
    lost = set(range(146))  # 14 items lost, none gained: -0.07
    paired = judge(*_regression(lost, margin=0.02))
    assert paired.outcome == "fail"
    assert "Δ CI lies below -0.0200" in paired.message and "14 worse / 0 better" in paired.message
    assert judge(*_regression(lost, paired=False, margin=0.02)).outcome == "inconclusive"


def test_a_noisy_candidate_is_inconclusive_with_the_items_that_would_decide():
    rng = random.Random(4)
    lost = set(rng.sample(sorted(BASE), 30))
    gained = set(rng.sample(range(160, 200), 26))
    candidate = (BASE - lost) | gained
    gate, measured, reference = _regression(candidate)
    verdict = judge(gate, measured, reference)
    assert verdict.outcome == "inconclusive"
    assert "30 worse / 26 better of n=200 paired items" in verdict.message
    expected = items_needed(
        paired_difference(reference.items, measured.items, 0.95),  # type: ignore[arg-type]
        0.05,
        0.95,
    )
    assert verdict.n_needed == expected and expected > N


def test_max_rel_drop_margin_is_the_baseline_times_the_share():
    gate = make_gate("mmlu", max_rel_drop=0.1, confidence=0.95)
    base, cand = _items(N, BASE), _items(N, BASE)
    verdict = judge(
        gate, _m(0.8, N, proportion=True, items=cand), Reference(0.8, "f", N, None, base)
    )
    assert verdict.margin == pytest.approx(0.08)
    assert "max_rel_drop 0.1 of 0.8000" in verdict.message and verdict.outcome == "pass"


def test_every_criterion_must_hold_and_the_message_names_the_deciding_one():
    gate = make_gate("mmlu", min_score=0.79, max_drop=0.05, confidence=0.95)
    base = _items(N, BASE)
    verdict = judge(
        gate,
        _m(0.8, N, proportion=True, items=base),
        Reference(0.8, "baseline file", N, None, base),
    )
    # the regression check passes paired, min_score 0.79 at n=200 cannot be decided
    assert verdict.outcome == "inconclusive"
    assert "straddles 0.7900 [min_score 0.79]" in verdict.message
    assert "max_drop" not in verdict.message.split("inconclusive:")[1]
    low = make_gate("mmlu", min_score=0.5, max_drop=0.05, confidence=0.95)
    passed = judge(
        low, _m(0.8, N, proportion=True, items=base), Reference(0.8, "baseline file", N, None, base)
    )
    assert passed.outcome == "pass"
    assert "[min_score 0.5]" in passed.message and "[max_drop 0.05]" in passed.message


def test_unpaired_when_the_candidate_lacks_items_says_why():
    gate, measured, reference = _regression(BASE)
    bare = Measured(
        measured.metric, measured.score, N, "e", proportion=True, items_note="not available (x)"
    )
    verdict = judge(gate, bare, reference)
    assert verdict.difference is not None and not verdict.difference.paired
    assert "unpaired: not available (x)" in verdict.message


def test_unpaired_without_counts_or_stderr_is_an_error():
    gate = make_gate("mt-bench", metric="rating", max_drop=0.5, confidence=0.95)
    verdict = judge(gate, _m(7.5, None, metric="rating"), Reference(7.6, "baseline file"))
    assert verdict.outcome == "error" and "needs both sides' sample counts" in verdict.message


def test_blessing_leaves_the_regression_criteria_out():
    gate = make_gate("mmlu", max_drop=0.01, confidence=0.95)
    verdict = assess(gate, _m(0.8, N, proportion=True), None, blessing=True).verdict()
    assert verdict.outcome == "pass" and "recorded as the new baseline" in verdict.message
    both = make_gate("mmlu", min_score=0.9, max_drop=0.01)
    assert assess(both, _m(0.8, N), None, blessing=True).verdict().outcome == "fail"


# --- Holm ---------------------------------------------------------------------------------


def _marginal(seed: int, margin: float = 0.05):
    """A paired check that passes at 95% on its own, but not by much."""
    rng = random.Random(seed)
    lost = set(rng.sample(sorted(BASE), 4))
    gate = make_gate(
        f"custom-g{seed}", dataset="scaidrive://o/x.jsonl", max_drop=margin, confidence=0.95
    )
    base, cand = _items(N, BASE), _items(N, BASE - lost)
    return assess(
        gate,
        _m(cand.mean, N, proportion=True, items=cand),
        Reference(base.mean, "baseline file", N, None, base),
    )


def test_holm_on_one_gate_is_the_uncorrected_verdict():
    for seed in range(5):
        assessed = _marginal(seed)
        [decisions] = holm_decisions([assessed], 0.95)
        assert assessed.verdict(decisions=decisions).outcome == assessed.verdict().outcome


def test_holm_across_many_gates_withholds_marginal_passes_and_keeps_clear_ones():
    marginal = [_marginal(seed) for seed in range(10)]
    assert all(a.verdict().outcome == "pass" for a in marginal)
    clear = assess(*_regression(BASE, margin=0.2))
    family = [*marginal, clear]
    decisions = holm_decisions(family, 0.95)
    verdicts = [a.verdict(decisions=d) for a, d in zip(family, decisions, strict=True)]
    assert verdicts[-1].outcome == "pass"
    held = [v for v in verdicts[:-1] if v.outcome == "inconclusive"]
    assert held, "Holm should withhold some marginal passes among 11 checks"
    example = held[0]
    assert "Holm over 11 checks: p=" in example.message and "not decisive" in example.message
    assert example.corrected is not None and example.corrected.family_size == 11
    # items needed are quoted at the corrected level, so more than at the gate's own
    assert example.n_needed and example.n_needed > N


# --- power --------------------------------------------------------------------------------


def test_power_warning_for_humaneval_with_a_two_point_margin():
    gate = make_gate("humaneval", max_drop=0.02, confidence=0.95)
    found = power(gate, 164, baseline=0.34, discordance=0.15)
    assert found is not None and found.underpowered
    assert found.detectable == pytest.approx(0.085, abs=0.001)
    assert found.warning == (
        "humaneval n=164: max_drop 0.02 cannot be told from noise; the smallest drop this gate "
        "can detect at 95% is about 0.085 (from the baseline's per-item discordance 0.150); "
        "raise n or the margin"
    )


def test_power_says_which_variance_it_used():
    gate = make_gate("humaneval", max_drop=0.02)
    worst = power(gate, 164)
    assert worst is not None and "worst case" in (worst.warning or "")
    assert "a point comparison" in (worst.warning or "")
    from_stderr = power(gate, 164, baseline=0.34, baseline_stderr=0.037)
    assert from_stderr is not None and "from the baseline's stderr" in from_stderr.basis
    assert from_stderr.detectable < worst.detectable


def test_power_is_quiet_when_the_margin_is_wide_or_n_unknown():
    assert (
        power(make_gate("mmlu", max_drop=0.02, confidence=0.95), 14042, discordance=0.15).warning
        is None
    )  # type: ignore[union-attr]
    assert power(make_gate("mmlu", max_drop=0.02), None) is None
    assert power(make_gate("mmlu", min_score=0.5), 100) is None
    assert power(make_gate("mmlu", max_rel_drop=0.05), 100) is None  # baseline unknown
    rel = power(make_gate("mmlu", max_rel_drop=0.05), 100, baseline=0.6)
    assert rel is not None and rel.margin == pytest.approx(0.03)
    assert power(make_gate("mt", metric="rating", max_drop=0.1), 80, proportion=False) is None


# --- building gates -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"min_score": "high"}, "min_score must be a number"),
        ({"max_drop": -0.1}, "max_drop is an allowed drop"),
        ({"min_score": 0.5, "confidence": 95}, "confidence must lie strictly between 0 and 1"),
        ({"min_score": 0.5, "num_samples": 0}, "num_samples"),
        ({"bogus": 1}, "unknown argument"),
        ({"num_samples": 10}, r"assert_benchmark\('mmlu'\) sets no criterion"),
        ({"metric": "acc", "confidence": 0.9}, "sets no criterion"),
    ],
)
def test_bad_gate_arguments_are_one_line_errors(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        make_gate("mmlu", **kwargs)


def test_a_spec_only_gate_declares_without_criteria():
    gate = make_gate("mmlu", spec_only=True, num_samples=10)
    assert not gate.has_criterion and label(gate.spec) == "mmlu[n=10]"


def test_custom_benchmark_needs_a_dataset():
    with pytest.raises(ValueError, match="dataset"):
        make_gate("custom-acme", min_score=0.5)


def test_label_is_stable_and_readable():
    gate = make_gate(
        "custom-acme",
        dataset="scaidrive://acme/eval/x.jsonl",
        num_samples=50,
        parameters={"temperature": "0.0", "max_new_tokens": "256"},
        min_score=0.5,
    )
    assert (
        label(gate.spec)
        == "custom-acme@scaidrive://acme/eval/x.jsonl[n=50]{max_new_tokens=256,temperature=0.0}"
    )
    assert label(make_gate("mmlu", spec_only=True).spec) == "mmlu"
