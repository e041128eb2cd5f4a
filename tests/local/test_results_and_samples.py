"""The one score rule end to end, and per-item results through the samples route.

Real coordinator over loopback: results name their primary metric and proportions and carry no
invented score; `Client.samples` / `AsyncClient.samples` page through per-item records with stable
ids; a coordinator without the samples route answers a typed "not available".
"""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from scaimind_local import LocalCoordinator
from scaimind_local._benchmarks.base import RunnerResult
from scaimind_local._service import result_record
from scaimind_local.testing import write_custom_dataset, write_model
from scaimind_nb import (
    AsyncClient,
    Client,
    NotFoundError,
    SamplesNotAvailableError,
    Status,
    parse_evaluation,
)
from scaimind_nb.stats import ItemOutcomes

ROWS = [
    {"id": "alpha", "prompt": "q0", "reference": "a0"},
    {"id": "beta", "prompt": "q1", "reference": "a1", "subject": "greek"},
    {"prompt": "q2", "reference": "a2"},
    {"id": 7, "prompt": "q3", "reference": "a3"},
    {"prompt": "q4", "reference": "a4"},
]
ANSWERS = {"q0": "a0", "q1": "wrong", "q2": "a2", "q3": "a3", "q4": "nope"}


@pytest.fixture
def finished(coordinator: LocalCoordinator, unique: str) -> tuple[LocalCoordinator, str]:
    """A COMPLETED evaluation with two custom benchmarks on the same 5-item dataset."""
    model = write_model(
        coordinator.drive_root, f"org/models/s-{unique}", options={"answers": ANSWERS}
    )
    dataset = write_custom_dataset(coordinator.drive_root, f"org/eval/s-{unique}.jsonl", ROWS)
    coordinator.register_job(f"job_s_{unique}", model)
    with Client(coordinator.url, coordinator.api_key) as client:
        ev = client.submit(
            f"job_s_{unique}",
            model,
            [
                {"name": "custom-a", "dataset": dataset},
                {"name": "custom-b", "dataset": dataset, "parameters": {"match": "contains"}},
            ],
        )
        done = client.wait(ev.evaluation_id, timeout=60, poll_interval=0.02)
    assert done.status is Status.COMPLETED
    return coordinator, done.evaluation_id


def test_results_name_their_score_and_proportions(
    finished: tuple[LocalCoordinator, str],
) -> None:
    coord, evaluation_id = finished
    raw = coord.request("GET", f"/v1/modules/scaimind/evaluations/{evaluation_id}")["data"]
    # each match mode names its metric: custom-b matched by "contains"
    for result, metric in zip(raw["results"], ["exact_match", "contains_match"], strict=True):
        assert result["primary_metric"] == metric
        assert result["score"] == result["metrics"][metric] == 0.6
        assert result["proportion_metrics"] == [metric]
        assert "count" not in result["metrics"]
    ev = parse_evaluation(raw)
    result = ev.result("custom-a")
    assert (result.primary_metric, result.score, result.is_proportion()) == (
        "exact_match",
        0.6,
        True,
    )
    assert ev.to_frame()["metric"].tolist() == ["exact_match", "contains_match"]  # no "score" twin


def test_a_runner_without_metrics_gives_a_result_without_score() -> None:
    empty = result_record("custom-x", 0, RunnerResult(metrics={}, num_samples=0))
    assert "score" not in empty and "primary_metric" not in empty
    parsed = parse_evaluation({"evaluation_id": "e", "results": [empty]}).results[0]
    with pytest.raises(KeyError, match="no metrics"):
        _ = parsed.score
    unnamed = result_record(
        "custom-y", 0, RunnerResult(metrics={"f1": 0.5, "bleu": 0.2}, num_samples=3)
    )
    assert "score" not in unnamed  # two metrics, none named: no score is invented
    only = result_record("custom-z", 0, RunnerResult(metrics={"bleu": 0.2}, num_samples=3))
    assert (only["primary_metric"], only["score"]) == ("bleu", 0.2)


def test_samples_have_stable_ids_outcomes_and_pages(
    finished: tuple[LocalCoordinator, str],
) -> None:
    coord, evaluation_id = finished
    with Client(coord.url, coord.api_key) as client:
        every = list(client.samples(evaluation_id, page_size=2))
        only_a = list(client.samples(evaluation_id, "custom-a", page_size=3))
    assert [s.benchmark for s in every] == ["custom-a"] * 5 + ["custom-b"] * 5
    # the dataset's own id, else the item's line number (stable whatever num_samples picks)
    assert [s.item_id for s in only_a] == ["alpha", "beta", "3", "7", "5"]
    assert [s.correct for s in only_a] == [True, False, True, True, False]
    assert [s.score for s in only_a] == [1.0, 0.0, 1.0, 1.0, 0.0]
    assert only_a[0].record["completion"] == "a0" and only_a[1].record["reference"] == "a1"
    assert all(coord.api_key not in json.dumps(s.record) for s in every)
    outcomes = ItemOutcomes.from_samples(only_a)
    assert outcomes.n == 5 and outcomes.binary and outcomes.mean == 0.6


def test_async_samples_match_the_sync_ones(finished: tuple[LocalCoordinator, str]) -> None:
    coord, evaluation_id = finished

    async def collect() -> list[str]:
        async with AsyncClient(coord.url, coord.api_key) as client:
            return [s.item_id async for s in client.samples(evaluation_id, "custom-b", page_size=2)]

    with Client(coord.url, coord.api_key) as client:
        expected = [s.item_id for s in client.samples(evaluation_id, "custom-b")]
    assert asyncio.run(collect()) == expected == ["alpha", "beta", "3", "7", "5"]


def test_samples_of_an_unknown_evaluation_is_not_found(coordinator: LocalCoordinator) -> None:
    with Client(coordinator.url, coordinator.api_key) as client, pytest.raises(NotFoundError):
        list(client.samples("eval_does_not_exist"))


def test_a_coordinator_without_the_samples_route_answers_not_available() -> None:
    """A ScaiGrid-like coordinator that has evaluations but no per-item route (404 on it)."""
    record = {"data": {"evaluation_id": "eval_1", "job_id": "j", "status": "COMPLETED"}}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/samples"):
            return httpx.Response(404, json={"error": {"code": 5, "message": "Not Found"}})
        if request.url.path.endswith("/evaluations/eval_1"):
            return httpx.Response(200, json=record)
        return httpx.Response(404, json={"error": {"message": "evaluation not found"}})

    with Client("https://scaigrid.test", "k", transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(SamplesNotAvailableError, match=r"eval_1.*not available") as info:
            list(client.samples("eval_1"))
        assert info.value.evaluation_id == "eval_1"
        with pytest.raises(NotFoundError):
            list(client.samples("eval_2"))
