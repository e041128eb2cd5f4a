"""Reuse keys and the one rule of which evaluation may serve a spec, case by hostile case."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_scaimind import _evaluations
from pytest_scaimind._evaluations import Serving, refusal, reuse_key
from scaimind_nb import Benchmark, parse_evaluation

SPEC = Benchmark("custom-qa", dataset="scaidrive://o/qa.jsonl")
MODEL = "sha256:" + "a" * 64
DATA = "sha256:" + "b" * 64


def _evaluation(
    status: str = "COMPLETED",
    *,
    spec: Benchmark = SPEC,
    model_digest: str | None = MODEL,
    data_digest: str | None = DATA,
    result: dict[str, Any] | str | None = "ok",
) -> Any:
    entry: dict[str, Any] = spec.to_request()
    if data_digest is not None:
        entry["data"] = {"digest": data_digest, "records": 4, "source": spec.dataset}
    record: dict[str, Any] = {
        "evaluation_id": "eval_1",
        "job_id": "job_1",
        "model_uri": "scaidrive://o/m",
        "status": status,
        "benchmarks": [entry],
        "results": [],
    }
    if model_digest is not None:
        record["model_digest"] = model_digest
    if result == "ok":
        record["results"] = [{"benchmark": spec.name, "metrics": {"exact_match": 0.75}}]
    elif isinstance(result, dict):
        record["results"] = [{"benchmark": spec.name, **result}]
    return parse_evaluation(record)


VERIFIED = Serving(SPEC, model_digest=MODEL, data_digest=DATA)
BY_URI = Serving(SPEC)


@pytest.mark.parametrize(
    ("evaluation", "serving", "reason"),
    [
        (_evaluation(), VERIFIED, None),
        (_evaluation("RUNNING", result=None), VERIFIED, None),
        (_evaluation("QUEUED", result=None), VERIFIED, None),
        (_evaluation("FAILED"), VERIFIED, None),  # a partial result serves its spec
        (_evaluation("CANCELLED"), VERIFIED, None),
        (_evaluation(model_digest=None, data_digest=None), BY_URI, None),
        (_evaluation(model_digest="sha256:other"), BY_URI, None),  # what a URI key cannot see
        (
            _evaluation(
                spec=Benchmark("custom-qa", dataset="scaidrive://o/qa.jsonl", num_samples=2)
            ),
            VERIFIED,
            "it does not hold the spec",
        ),
        (
            _evaluation(spec=Benchmark("custom-qa", dataset="scaidrive://o/qa2.jsonl")),
            VERIFIED,
            "it does not hold the spec",
        ),
        (
            _evaluation(model_digest="sha256:other"),
            VERIFIED,
            "its model digest sha256:other is not the model's",
        ),
        (_evaluation(model_digest=None), VERIFIED, "its model digest (not recorded) is not"),
        (
            _evaluation(data_digest="sha256:edited"),
            VERIFIED,
            "its data digest sha256:edited is not the data's",
        ),
        (_evaluation(data_digest=None), VERIFIED, "its data digest (not recorded) is not"),
        (_evaluation("FAILED", result=None), VERIFIED, "it ended FAILED without a result"),
        (_evaluation("CANCELLED", result=None), BY_URI, "it ended CANCELLED without a result"),
        (
            _evaluation("FAILED", result={"status": "FAILED", "error": {"message": "line 2"}}),
            VERIFIED,
            "the spec failed in it (line 2)",
        ),
        (
            _evaluation("RUNNING", result={"status": "FAILED", "error": {"message": "boom"}}),
            BY_URI,
            "the spec failed in it (boom)",
        ),
        (_evaluation("WARMING_UP", result=None), BY_URI, "its status is unknown"),
    ],
)
def test_which_evaluation_may_serve_a_spec(
    evaluation: Any, serving: Serving, reason: str | None
) -> None:
    got = refusal(evaluation, serving)
    if reason is None:
        assert got is None
    else:
        assert got is not None and got.startswith(reason)


def test_an_evaluation_with_two_specs_of_one_name_serves_neither() -> None:
    other = Benchmark("custom-qa", dataset="scaidrive://o/other.jsonl")
    evaluation = parse_evaluation(
        {
            "evaluation_id": "eval_2",
            "status": "COMPLETED",
            "benchmarks": [other.to_request(), SPEC.to_request()],
            "results": [{"benchmark": "custom-qa", "metrics": {"exact_match": 0.1}}] * 2,
        }
    )
    assert refusal(evaluation, BY_URI) == (
        "it holds several specs named 'custom-qa', whose results cannot be told apart"
    )


def _key(**change: Any) -> str:
    base: dict[str, Any] = {
        "host": "http://c",
        "job_id": "job_1",
        "model_uri": "scaidrive://o/m",
        "checkpoint_id": "",
        "serving": Serving(SPEC, model_digest=MODEL, data_digest=DATA),
    }
    values = {**base, **change}
    return reuse_key(
        values["host"],
        values["job_id"],
        values["model_uri"],
        values["checkpoint_id"],
        values["serving"],
    )


def test_the_reuse_key_covers_where_who_what_and_the_content(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = _key()
    changes: list[dict[str, Any]] = [
        {"host": "http://other"},
        {"job_id": "job_2"},
        {"model_uri": "scaidrive://o/m2"},
        {"checkpoint_id": "ckpt-1"},
        {"serving": Serving(SPEC, model_digest="sha256:new", data_digest=DATA)},
        {"serving": Serving(SPEC, model_digest=MODEL, data_digest="sha256:new")},
        {"serving": Serving(SPEC)},  # no precheck: a key of its own
    ]
    for change in changes:
        assert _key(**change) != base, change
    monkeypatch.setattr(_evaluations, "KEY_VERSION", _evaluations.KEY_VERSION + 1)
    assert _key() != base  # a new key version never reads an older entry


def test_a_serving_travels_to_other_xdist_workers_intact() -> None:
    serving = Serving(
        Benchmark("mmlu", num_samples=5, parameters={"seed": "1"}),
        evaluation_id="eval_1",
        reused=True,
        verified=True,
        model_digest=MODEL,
        data_digest=DATA,
    )
    assert Serving.from_json(serving.to_json()) == serving
    problem = Serving(SPEC, problem="custom-qa: line 2: invalid JSON")
    assert Serving.from_json(problem.to_json()) == problem
