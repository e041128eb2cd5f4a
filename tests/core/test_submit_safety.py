"""No duplicate GPU spend: an ambiguous submit failure is resolved by a lookup, never a blind resend."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from scaimind_nb import BadRequestError, ConflictError, ServerError

from ._fakes import FakeCoordinator, raise_, respond

ARGS = (
    "job_1",
    "scaidrive://o/m",
    ["mmlu", {"name": "custom-qa", "dataset": "scaidrive://o/qa.jsonl"}],
)


def test_read_timeout_after_create_returns_the_created_evaluation(
    make_client, fake: FakeCoordinator
) -> None:
    fake.faults = [raise_(httpx.ReadTimeout, after_route=True)]
    ev = make_client().submit(*ARGS, checkpoint_id="")
    assert len(fake.evaluations) == 1
    assert len(fake.calls("POST")) == 1
    assert ev.evaluation_id == next(iter(fake.evaluations))
    assert ev.job_id == "job_1" and ev.model_uri == "scaidrive://o/m"


@pytest.mark.parametrize("status", [502, 503, 504, 500])
def test_gateway_error_after_create_is_found_not_resent(
    make_client, fake: FakeCoordinator, status: int
) -> None:
    def created_then_failed(request: httpx.Request, route: Any) -> httpx.Response:
        route(request)
        return httpx.Response(status, text="upstream died")

    fake.faults = [created_then_failed]
    ev = make_client().submit(*ARGS)
    assert len(fake.evaluations) == 1 and len(fake.calls("POST")) == 1
    assert ev.evaluation_id == "eval_0001"


def test_gateway_error_without_create_is_resubmitted_after_lookup(
    make_client, fake: FakeCoordinator
) -> None:
    fake.faults = [respond(503, {"error": {"message": "busy"}})]
    ev = make_client().submit(*ARGS)
    assert len(fake.evaluations) == 1
    assert [r.method for r in fake.requests] == ["POST", "GET", "POST"]
    assert ev.evaluation_id == "eval_0001"


def test_connect_error_is_retried_without_lookup(make_client, fake: FakeCoordinator) -> None:
    fake.faults = [raise_(httpx.ConnectError)]
    make_client().submit(*ARGS)
    assert [r.method for r in fake.requests] == ["POST", "POST"]


@pytest.mark.parametrize(("status", "cls"), [(400, BadRequestError), (409, ConflictError)])
def test_4xx_is_never_retried(
    make_client, fake: FakeCoordinator, status: int, cls: type[Exception]
) -> None:
    fake.faults = [respond(status, {"error": {"message": "no"}})]
    with pytest.raises(cls):
        make_client().submit(*ARGS)
    assert len(fake.requests) == 1


def test_lookup_ignores_evaluations_that_differ(make_client, fake: FakeCoordinator) -> None:
    base = {
        "job_id": "job_1",
        "model_uri": "scaidrive://o/m",
        "benchmarks": [
            {"name": "mmlu"},
            {"name": "custom-qa", "dataset": "scaidrive://o/qa.jsonl"},
        ],
    }
    fake.add({"evaluation_id": "other_ckpt", **base, "checkpoint_id": "step-9"}, age=1)
    fake.add(
        {
            "evaluation_id": "other_bench",
            **base,
            "benchmarks": [{"name": "mmlu", "num_samples": 5}],
        },
        age=2,
    )
    fake.add({"evaluation_id": "other_model", **base, "model_uri": "scaidrive://o/other"}, age=3)
    fake.faults = [respond(504, text="timeout")]
    ev = make_client().submit(*ARGS)
    assert ev.evaluation_id not in {"other_ckpt", "other_bench", "other_model"}
    assert len(fake.calls("POST")) == 2


def test_lookup_stops_at_items_older_than_the_window(make_client, fake: FakeCoordinator) -> None:
    base = {
        "job_id": "job_1",
        "model_uri": "scaidrive://o/m",
        "benchmarks": [
            {"name": "mmlu"},
            {"name": "custom-qa", "dataset": "scaidrive://o/qa.jsonl"},
        ],
    }
    fake.add({"evaluation_id": "old_same", **base}, age=3600)
    fake.faults = [respond(503, text="busy")]
    ev = make_client().submit(*ARGS)
    assert ev.evaluation_id != "old_same"
    assert not any(r.url.path.endswith("/old_same") for r in fake.requests)


def test_final_ambiguous_failure_is_reconciled_then_raised(
    make_client, fake: FakeCoordinator
) -> None:
    def passthrough(request: httpx.Request, route: Any) -> None:
        return None

    fake.faults = [respond(503, text="busy"), passthrough, respond(503, text="busy")]
    with pytest.raises(ServerError):
        make_client(max_retries=1).submit(*ARGS)
    assert [r.method for r in fake.requests] == ["POST", "GET", "POST", "GET"]


def test_find_evaluation_public_helper(make_client, fake: FakeCoordinator) -> None:
    bench = [{"name": "mmlu"}]
    fake.add(
        {
            "evaluation_id": "done",
            "job_id": "job_1",
            "model_uri": "scaidrive://o/m",
            "benchmarks": bench,
            "status": "COMPLETED",
        },
        age=100,
    )
    fake.add(
        {
            "evaluation_id": "running",
            "job_id": "job_1",
            "model_uri": "scaidrive://o/m",
            "benchmarks": bench,
            "status": "RUNNING",
        },
        age=10,
    )
    fake.add(
        {
            "evaluation_id": "other_job",
            "job_id": "job_2",
            "model_uri": "scaidrive://o/m",
            "benchmarks": bench,
        },
        age=5,
    )
    client = make_client()
    assert client.find_evaluation("job_1", "scaidrive://o/m", ["mmlu"]).evaluation_id == "running"
    found = client.find_evaluation("job_1", "scaidrive://o/m", "mmlu", statuses=["COMPLETED"])
    assert found is not None and found.evaluation_id == "done"
    assert (
        client.find_evaluation(
            "job_1", "scaidrive://o/m", ["mmlu"], since=50, statuses=["COMPLETED"]
        )
        is None
    )
    assert client.find_evaluation("job_1", "scaidrive://o/m", ["humaneval"]) is None
    mixed = [{"name": "mmlu"}, {"name": "custom-qa", "dataset": "scaidrive://o/d.jsonl"}]
    fake.add(
        {
            "evaluation_id": "mixed",
            "job_id": "job_1",
            "model_uri": "scaidrive://o/m",
            "benchmarks": mixed,
        }
    )
    found = client.find_evaluation("job_1", "scaidrive://o/m", list(reversed(mixed)))
    assert found is not None and found.evaluation_id == "mixed"
    assert not any(r.url.path.endswith("/other_job") for r in fake.requests)


def test_garbled_submit_answer_is_reconciled(make_client, fake: FakeCoordinator) -> None:
    def created_then_garbled(request: httpx.Request, route: Any) -> httpx.Response:
        route(request)
        return httpx.Response(200, text="<html>proxy</html>")

    fake.faults = [created_then_garbled]
    ev = make_client().submit(*ARGS)
    assert ev.evaluation_id == "eval_0001" and len(fake.calls("POST")) == 1
