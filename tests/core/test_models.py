"""Benchmark validation and coercion, the primary-metric rule, lookups with helpful errors."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from scaimind_nb import (
    Benchmark,
    BenchmarkResult,
    ScaimindKeyError,
    ScaimindValueError,
    parse_evaluation,
)


def test_benchmark_coerce_and_request_shape() -> None:
    assert Benchmark.coerce("mmlu") == Benchmark("mmlu")
    b = Benchmark.coerce(
        {
            "name": "custom-qa",
            "dataset": "scaidrive://o/d.jsonl",
            "numSamples": 5,
            "parameters": {"k": "v"},
        }
    )
    assert b.to_request() == {
        "name": "custom-qa",
        "dataset": "scaidrive://o/d.jsonl",
        "num_samples": 5,
        "parameters": {"k": "v"},
    }
    assert Benchmark("mmlu", parameters={}).to_request() == {"name": "mmlu"}
    assert Benchmark("mmlu", parameters={"b": "2", "a": "1"}).key() == (
        "mmlu",
        None,
        None,
        (("a", "1"), ("b", "2")),
    )
    assert Benchmark.coerce(b) is b
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": ""}, "non-empty"),
        ({"name": "custom-x"}, "needs a dataset"),
        ({"name": "mmlu", "num_samples": 0}, ">= 1"),
        ({"name": "mmlu", "num_samples": True}, ">= 1"),
        ({"name": "mmlu", "num_samples": 2.5}, ">= 1"),
        ({"name": "mmlu", "parameters": {"shots": 5}}, "'shots'"),
        ({"name": "mmlu", "parameters": ["a"]}, "dict of str"),
        ({"name": "mmlu", "dataset": ""}, "dataset"),
    ],
)
def test_benchmark_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ScaimindValueError, match=match):
        Benchmark(**kwargs)


def test_coerce_rejects_unknown_keys_by_name() -> None:
    with pytest.raises(ValueError, match="'shots', 'seed'"):
        Benchmark.coerce({"name": "mmlu", "shots": 5, "seed": 1})


@pytest.mark.parametrize(
    ("metrics", "primary"),
    [
        ({"f1": 0.1, "Score": 0.2, "accuracy": 0.3}, "Score"),
        ({"f1": 0.1, "acc": 0.2, "accuracy": 0.3}, "accuracy"),
        ({"f1": 0.1, "acc_norm": 0.2, "acc": 0.3}, "acc"),
        ({"f1": 0.1, "ExactMatch": 0.4}, "ExactMatch"),
        ({"f1": 0.1, "pass_at_1": 0.5}, "pass_at_1"),
        ({"f1": 0.1, "pass@1": 0.5}, "pass@1"),
        ({"bleu": 0.7}, "bleu"),
    ],
)
def test_primary_metric_rule(metrics: dict, primary: str) -> None:
    r = BenchmarkResult("b", metrics)
    assert r.primary_metric == primary and r.score == metrics[primary]


def test_primary_metric_ambiguous_lists_metrics() -> None:
    r = BenchmarkResult("b", {"bleu": 0.1, "rouge": 0.2})
    with pytest.raises(ScaimindKeyError, match="bleu, rouge"):
        _ = r.score
    assert r.value("ROUGE") == 0.2
    with pytest.raises(KeyError, match="available: bleu, rouge"):
        r.value("f1")


def test_evaluation_lookups() -> None:
    ev = parse_evaluation(
        {
            "evaluation_id": "e",
            "results": [{"benchmark": "MMLU", "metrics": {"acc": 0.5}, "stderr": {"acc": 0.1}}],
        }
    )
    assert ev.result("mmlu").benchmark == "MMLU"
    assert ev.result("MMLU").stderr_of() == 0.1
    with pytest.raises(KeyError, match="available: MMLU"):
        ev.result("gsm8k")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.status = None  # type: ignore[misc,assignment]


def test_models_are_hashable_despite_dict_fields() -> None:
    ev = parse_evaluation(
        {"evaluation_id": "e", "results": [{"benchmark": "b", "metrics": {"acc": 0.5}}]}
    )
    same = parse_evaluation(
        {"evaluationId": "e", "results": {"b": {"metrics": [{"name": "acc", "value": 0.5}]}}}
    )
    assert ev == same and hash(ev) == hash(same) and len({ev, same}) == 1
    assert hash(ev.results[0]) == hash(same.results[0])
    b = Benchmark("mmlu", parameters={"k": "v"})
    assert {b: 1}[Benchmark.coerce({"name": "mmlu", "parameters": {"k": "v"}})] == 1


def test_evaluation_repr_is_concise_and_display_shows_results() -> None:
    from scaimind_nb import parse_evaluation

    ev = parse_evaluation(
        {
            "evaluation_id": "eval_r1",
            "status": "COMPLETED",
            "job_id": "job_1",
            "model_uri": "scaidrive://o/m",
            "results": [
                {"benchmark": "mmlu", "metrics": {"accuracy": 0.625}},
                {"benchmark": "odd", "metrics": {"a": 1.0, "b": 2.0}},
            ],
            "unknown_field": "x" * 500,
        }
    )
    text = repr(ev)
    assert text == "<Evaluation eval_r1 COMPLETED job=job_1 model=scaidrive://o/m mmlu=0.625 odd=?>"
    bundle = ev._repr_mimebundle_()
    assert "eval_r1" in bundle["text/plain"] and "0.6250" in bundle["text/plain"]
    assert "COMPLETED" in bundle["text/html"] and "accuracy" in bundle["text/html"]


def test_one_score_rule_on_every_result_shape() -> None:
    from scaimind_nb import parse_evaluation

    def result(**fields: object) -> BenchmarkResult:
        payload = {
            "evaluation_id": "e",
            "status": "COMPLETED",
            "results": [{"benchmark": "qa", **fields}],
        }
        return parse_evaluation(payload).results[0]

    named = result(
        score=0.75, primaryMetric="exact_match", metrics={"exact_match": 0.75, "f1": 0.8}
    )
    assert (named.primary_metric, named.score) == ("exact_match", 0.75)
    # the record names its primary metric: the metrics are the truth, a stale score field is kept aside
    stale = result(score=0.7, primary_metric="exact_match", metrics={"exact_match": 0.75})
    assert (stale.primary_metric, stale.score, stale.extra["score"]) == ("exact_match", 0.75, 0.7)
    # no name: the score field is the metric "score", first of the preferences
    unnamed = result(score=0.75, metrics={"exact_match": 0.7, "f1": 0.8})
    assert (unnamed.primary_metric, unnamed.score) == ("score", 0.75)
    assert unnamed.value("exact_match") == 0.7
    # a named primary metric that only the score field carries
    only_score = result(score=0.6, primary_metric="accuracy")
    assert (only_score.primary_metric, only_score.score, only_score.metrics) == (
        "accuracy",
        0.6,
        {"accuracy": 0.6},
    )
    # metric= always overrides the rule, matched case- and punctuation-blind
    assert named.value("F1") == 0.8
    # a named metric that is absent falls back to the preferences
    absent = result(primary_metric="bleu", metrics={"accuracy": 0.5, "f1": 0.1})
    assert absent.primary_metric == "accuracy"


@pytest.mark.parametrize(
    "fields",
    [{}, {"score": 0.0}, {"score": 0, "metrics": {}}, {"primary_metric": "acc"}, {"metrics": []}],
)
def test_a_result_without_metrics_has_no_score(fields: dict[str, Any]) -> None:
    """A 0.0 score with nothing else is what proto3 leaves out: no invented 0.0, an error."""
    ev = parse_evaluation(
        {"evaluation_id": "e", "status": "COMPLETED", "results": [{"benchmark": "b", **fields}]}
    )
    with pytest.raises(ScaimindKeyError, match="no metrics, so no score"):
        _ = ev.results[0].score
    with pytest.raises(ScaimindKeyError):
        ev.score("b")


def test_proportions_come_from_the_record_when_it_declares_them() -> None:
    declared = BenchmarkResult(
        "mmlu",
        {"accuracy": 0.6, "macro_accuracy": 0.58, "rate": 0.3},
        proportions=frozenset({"accuracy", "rate"}),
    )
    assert declared.is_proportion() and declared.is_proportion("rate")
    assert not declared.is_proportion("macro_accuracy")
    # nothing declared: only the well-known names, never a mean of means or a count
    undeclared = BenchmarkResult("mmlu", {"accuracy": 0.6, "macro_accuracy": 0.58, "count": 40.0})
    assert undeclared.is_proportion("accuracy")
    assert not undeclared.is_proportion("macro_accuracy") and not undeclared.is_proportion("count")
    assert not BenchmarkResult("x", {"acc": 7.5}).is_proportion()  # not in [0, 1]
    parsed = parse_evaluation(
        {
            "evaluation_id": "e",
            "results": [
                {"benchmark": "qa", "metrics": {"em": 0.5, "f1": 0.4}, "proportionMetrics": ["em"]}
            ],
        }
    ).results[0]
    assert parsed.proportions == frozenset({"em"}) and not parsed.is_proportion("f1")
