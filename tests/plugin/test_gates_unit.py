"""Gate arithmetic: thresholds, baselines, Wilson intervals and the three confidence verdicts."""

from __future__ import annotations

import math

import pytest

from pytest_scaimind._gates import (
    judge,
    label,
    make_gate,
    samples_needed,
    wilson_interval,
)


def test_wilson_interval_matches_the_textbook_values():
    low, high = wilson_interval(0.5, 100, 0.95)
    assert math.isclose(low, 0.4038, abs_tol=1e-4)
    assert math.isclose(high, 0.5962, abs_tol=1e-4)
    assert wilson_interval(1.0, 10, 0.95)[1] == 1.0
    assert wilson_interval(0.0, 10, 0.95)[0] == pytest.approx(0.0, abs=1e-12)


def test_samples_needed_is_the_smallest_decisive_n_roughly():
    n = samples_needed(0.62, 0.60, 0.95)
    assert n is not None
    assert wilson_interval(0.62, n, 0.95)[0] >= 0.60
    assert wilson_interval(0.62, int(n * 0.9), 0.95)[0] < 0.60
    assert samples_needed(0.6, 0.6, 0.95) is None


def test_min_score_pass_and_fail_messages_carry_every_figure():
    gate = make_gate("mmlu", min_score=0.6, num_samples=1000)
    ok = judge(gate, metric="accuracy", score=0.65, n=1000, evaluation_id="eval_1")
    assert ok.outcome == "pass"
    bad = judge(gate, metric="accuracy", score=0.581, n=1000, evaluation_id="eval_9")
    assert bad.outcome == "fail"
    assert "\n" not in bad.message
    for part in ("mmlu", "accuracy", "0.5810", "0.6000", "-0.0190", "n=1000", "eval_9"):
        assert part in bad.message


def test_all_criteria_must_hold_and_the_strictest_wins():
    gate = make_gate("humaneval", min_score=0.2, max_drop=0.02, max_rel_drop=0.5)
    verdict = judge(gate, metric="pass@1", score=0.31, n=164, evaluation_id="e", baseline=0.34)
    assert verdict.outcome == "fail"
    assert math.isclose(verdict.threshold or 0, 0.32)
    assert math.isclose(verdict.delta or 0, -0.03)
    assert "baseline 0.3400" in verdict.message and "max_drop 0.02" in verdict.message
    assert (
        judge(gate, metric="pass@1", score=0.33, n=164, evaluation_id="e", baseline=0.34).outcome
        == "pass"
    )


def test_relative_drop():
    gate = make_gate("mmlu", max_rel_drop=0.1)
    assert (
        judge(gate, metric="acc", score=0.55, n=None, evaluation_id="e", baseline=0.6).outcome
        == "pass"
    )
    assert (
        judge(gate, metric="acc", score=0.53, n=None, evaluation_id="e", baseline=0.6).outcome
        == "fail"
    )


def test_missing_baseline_fails_with_the_hint():
    gate = make_gate("mmlu", max_drop=0.01)
    verdict = judge(
        gate,
        metric="acc",
        score=0.5,
        n=10,
        evaluation_id="e",
        baseline_missing="run --scaimind-update-baseline",
    )
    assert verdict.outcome == "fail"
    assert "--scaimind-update-baseline" in verdict.message


@pytest.mark.parametrize(
    ("score", "n", "outcome"),
    [(0.70, 2000, "pass"), (0.50, 2000, "fail"), (0.62, 200, "inconclusive")],
)
def test_confidence_gate_three_verdicts(score, n, outcome):
    gate = make_gate("mmlu", min_score=0.6, confidence=0.95)
    verdict = judge(gate, metric="accuracy", score=score, n=n, evaluation_id="e", proportion=True)
    assert verdict.outcome == outcome
    assert verdict.interval is not None
    if outcome == "inconclusive":
        assert verdict.n_needed and verdict.n_needed > n
        assert f"need n≈{verdict.n_needed:,}" in verdict.message


def test_confidence_uses_reported_stderr_for_non_proportions():
    gate = make_gate("mt-bench", min_score=7.0, metric="rating", confidence=0.95)
    verdict = judge(gate, metric="rating", score=7.5, n=80, evaluation_id="e", stderr=0.1)
    assert verdict.outcome == "pass"
    unknown = judge(gate, metric="rating", score=7.5, n=80, evaluation_id="e")
    assert unknown.outcome == "error" and "num_samples" in unknown.message


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"min_score": "high"}, "min_score must be a number"),
        ({"max_drop": -0.1}, "max_drop is an allowed drop"),
        ({"confidence": 95}, "confidence must lie strictly between 0 and 1"),
        ({"num_samples": 0}, "num_samples"),
        ({"bogus": 1}, "unknown argument"),
    ],
)
def test_bad_gate_arguments_are_one_line_errors(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        make_gate("mmlu", **kwargs)


def test_custom_benchmark_needs_a_dataset():
    with pytest.raises(ValueError, match="dataset"):
        make_gate("custom-acme", min_score=0.5)


def test_label_is_stable_and_readable():
    gate = make_gate(
        "custom-acme",
        dataset="scaidrive://acme/eval/x.jsonl",
        num_samples=50,
        parameters={"temperature": "0.0", "max_new_tokens": "256"},
    )
    assert (
        label(gate.spec)
        == "custom-acme@scaidrive://acme/eval/x.jsonl[n=50]{max_new_tokens=256,temperature=0.0}"
    )
    assert label(make_gate("mmlu").spec) == "mmlu"
