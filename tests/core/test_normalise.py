"""Every rendering of one evaluation in fixtures/renderings.json normalises to the same Evaluation."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scaimind_nb import (
    Evaluation,
    ProtocolError,
    Status,
    parse_evaluation,
    parse_page,
)

GROUPS = json.loads((Path(__file__).parent / "fixtures" / "renderings.json").read_text())
CASES = [(g, name) for g, spec in GROUPS.items() for name in spec["renderings"]]


def _parse(group: str, name: str) -> Evaluation:
    return parse_evaluation(GROUPS[group]["renderings"][name])


def test_fixture_set_is_broad() -> None:
    assert len(CASES) >= 12
    assert len(GROUPS["completed_mmlu"]["renderings"]) >= 12


@pytest.mark.parametrize(("group", "name"), CASES)
def test_rendering_matches_expectation(group: str, name: str) -> None:
    ev = _parse(group, name)
    expect = GROUPS[group]["expect"]
    for field in ("evaluation_id", "job_id", "model_uri", "checkpoint_id", "error"):
        if field in expect:
            assert getattr(ev, field) == expect[field], field
    assert ev.status is Status(expect["status"])
    if "created_at" in expect:
        assert ev.created_at == datetime.fromisoformat(expect["created_at"])
        assert ev.created_at is not None and ev.created_at.tzinfo is UTC
    if "results" in expect:
        assert len(ev.results) == expect["results"]
    if "benchmark" in expect:
        (result,) = ev.results
        assert result.benchmark == expect["benchmark"]
        assert ev.score(expect["benchmark"]) == pytest.approx(expect["score"])
        assert result.primary_metric == expect["primary_metric"]
        assert result.metrics == expect["metrics"]
        assert all(type(v) is float for v in result.metrics.values())
    if "num_samples" in expect:
        assert ev.results[0].num_samples == expect["num_samples"]
    if "stderr" in expect:
        assert ev.results[0].stderr == expect["stderr"]


@pytest.mark.parametrize("group", list(GROUPS))
def test_all_renderings_of_one_result_are_equal(group: str) -> None:
    parsed = {name: parse_evaluation(p) for name, p in GROUPS[group]["renderings"].items()}
    first_name, first = next(iter(parsed.items()))
    for name, ev in parsed.items():
        assert ev == first, f"{name} differs from {first_name}"


def test_unknown_fields_are_kept_in_extra_and_raw() -> None:
    ev = _parse("completed_mmlu", "python_defaults")
    extra = ev.results[0].extra
    assert extra["duration"] == "1.500s"
    assert extra["perplexity"] == "NaN"
    assert extra["n_shots"] == 5
    assert extra["status"] == "COMPLETED"
    assert extra["completed_at"] == datetime(2025, 3, 1, 12, 0, 0, 120000, tzinfo=UTC)
    assert ev.raw["results"][0]["duration"] == "1.500s"


def test_listing_item_keeps_name_in_raw() -> None:
    ev = _parse("listing_item", "local_coordinator")
    assert ev.raw["name"] == "evaluation of job_1"
    assert ev.benchmarks == ()


def test_metric_names_are_never_rewritten() -> None:
    ev = parse_evaluation(
        {
            "evaluationId": "e",
            "results": [{"benchmark": "humaneval", "metrics": {"pass@1": 0.3, "passAt10": 0.5}}],
        }
    )
    assert set(ev.results[0].metrics) == {"pass@1", "passAt10"}
    assert ev.score("humaneval") == 0.3
    assert ev.score("humaneval", "pass_at_1") == 0.3
    assert ev.score("HumanEval", "PASS_AT_10") == 0.5


def test_nan_and_infinity_strings() -> None:
    ev = parse_evaluation(
        {
            "evaluation_id": "e",
            "results": [
                {"benchmark": "b", "metrics": {"loss": "Infinity", "ppl": "NaN", "x": "-Infinity"}}
            ],
        }
    )
    m = ev.results[0].metrics
    assert m["loss"] == math.inf and m["x"] == -math.inf and math.isnan(m["ppl"])


def test_status_parse_variants() -> None:
    assert Status.parse("EVALUATION_STATUS_CANCELED") is Status.CANCELLED
    assert Status.parse("queued") is Status.QUEUED
    assert Status.parse(None) is Status.PENDING
    assert Status.parse(5) is Status.QUEUED
    assert Status.parse(99) is Status.UNKNOWN
    assert Status.parse("WARMING_UP") is Status.UNKNOWN
    assert Status.parse(True) is Status.UNKNOWN
    assert Status.COMPLETED.is_terminal and not Status.RUNNING.is_terminal


def test_unknown_status_keeps_original_in_raw() -> None:
    ev = parse_evaluation({"evaluation_id": "e", "status": "WARMING_UP"})
    assert ev.status is Status.UNKNOWN and ev.raw["status"] == "WARMING_UP"
    assert not ev.is_terminal


def test_score_field_wins_over_metrics() -> None:
    ev = parse_evaluation(
        {
            "evaluation_id": "e",
            "results": [{"benchmark": "mmlu", "score": 0.7, "metrics": {"accuracy": 0.6}}],
        }
    )
    assert ev.score("mmlu") == 0.7
    assert ev.score("mmlu", metric="accuracy") == 0.6


def test_progress_and_benchmarks_parsed() -> None:
    ev = parse_evaluation(
        {
            "data": {
                "evaluation_id": "e",
                "status": "RUNNING",
                "benchmarks": [
                    {
                        "name": "custom-qa",
                        "dataset": "scaidrive://o/d.jsonl",
                        "num_samples": "100",
                        "parameters": {"k": "v"},
                    },
                    "mmlu",
                ],
                "progress": [{"benchmark": "custom-qa", "completed": "10", "total": "100"}],
            }
        }
    )
    assert ev.benchmarks[0].key() == ("custom-qa", "scaidrive://o/d.jsonl", 100, (("k", "v"),))
    assert ev.benchmarks[1].name == "mmlu"
    assert ev.progress[0].completed == 10 and ev.progress[0].total == 100


@pytest.mark.parametrize("payload", [[1, 2], "text", {"data": {"status": "RUNNING"}}])
def test_unparseable_payload_is_protocol_error(payload: object) -> None:
    with pytest.raises(ProtocolError):
        parse_evaluation(payload)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("total", "expected"),
    [("42", 42), (42, 42), ("9007199254740993", 9007199254740993), (None, None)],
)
def test_page_total_count_renderings(total: object, expected: int | None) -> None:
    page = parse_page(
        {"data": {"evaluations": [{"job_id": "eval_1"}], "totalCount": total, "nextPageToken": "t"}}
    )
    assert page.total_count == expected
    assert page.next_page_token == "t"
    assert [e.evaluation_id for e in page.evaluations] == ["eval_1"]


def test_empty_list_page() -> None:
    page = parse_page({"data": {}})
    assert page.evaluations == [] and page.next_page_token is None and page.total_count is None
    assert parse_page({"data": {"evaluations": [], "next_page_token": ""}}).next_page_token is None


def test_model_and_data_digests_are_parsed_per_spec() -> None:
    ev = parse_evaluation(
        {
            "evaluationId": "e",
            "modelDigest": "sha256:ab",
            "benchmarks": [
                {
                    "name": "mmlu",
                    "data": {"digest": "sha256:cd", "records": "14042", "source": "p"},
                },
                {"name": "custom-x", "dataset": "scaidrive://o/x.jsonl"},
            ],
        }
    )
    assert ev.model_digest == "sha256:ab"
    info = ev.data_info("MMLU")
    assert info is not None and (info.digest, info.records, info.source) == (
        "sha256:cd",
        14042,
        "p",
    )
    assert ev.data_info("custom-x") is None and ev.data_info("unknown") is None
    bare = parse_evaluation({"evaluation_id": "e", "benchmarks": [{"name": "mmlu"}]})
    assert bare.model_digest is None and bare.data == ()
