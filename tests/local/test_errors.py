"""Every 4xx the coordinator answers, each as `{"error": {"code", "message"}}`."""

from __future__ import annotations

import httpx
import pytest

from scaimind_local import ApiCallError, LocalCoordinator

from ._util import API, submit, wait_for


def _error(resp: httpx.Response, status: int, *words: str) -> str:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) == {"code", "message"}
    for word in words:
        assert word in error["message"], error["message"]
    return str(error["code"])


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Basic abc", "Bearer"])
def test_401_without_a_valid_key(coordinator: LocalCoordinator, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    for method, path in [("GET", "/evaluations"), ("POST", "/jobs"), ("GET", "/benchmarks")]:
        resp = httpx.request(method, coordinator.url + API + path, headers=headers)
        assert _error(resp, 401, "SCAIGRID_API_KEY") == "UNAUTHENTICATED"
        assert resp.headers["www-authenticate"] == "Bearer"
    assert httpx.get(coordinator.url + "/openapi.json", headers=headers).status_code == 401


def test_404_for_unknown_job_evaluation_and_route(api: httpx.Client, unique: str) -> None:
    assert _error(submit(api, f"nojob_{unique}", "mmlu"), 404, "register it") == "NOT_FOUND"
    _error(api.get(f"/evaluations/eval_{unique}"), 404, f"eval_{unique}")
    _error(api.post(f"/evaluations/eval_{unique}/cancel"), 404)
    _error(api.get(f"/evaluations/eval_{unique}/samples"), 404)
    _error(api.get(f"/jobs/nojob_{unique}"), 404)
    _error(api.get("/nowhere"), 404, "no such route")


def test_409_when_the_job_is_not_completed(scored_setup, api: httpx.Client) -> None:
    coord, job_id, model_uri, benchmark, _ = scored_setup
    coord.register_job(job_id + "_running", model_uri, status="RUNNING")
    assert _error(submit(api, job_id + "_running", benchmark), 409, "RUNNING", "COMPLETED") == (
        "FAILED_PRECONDITION"
    )


def test_409_when_cancelling_a_finished_evaluation(scored_setup, api: httpx.Client) -> None:
    _, job_id, _, benchmark, _ = scored_setup
    eid = submit(api, job_id, benchmark).json()["data"]["evaluation_id"]
    assert wait_for(api, eid)["status"] == "COMPLETED"
    _error(api.post(f"/evaluations/{eid}/cancel"), 409, "already COMPLETED")


def test_400_for_bad_benchmarks(scored_setup, api: httpx.Client) -> None:
    _, job_id, _, benchmark, _ = scored_setup
    ds = benchmark["dataset"]
    cases = [
        ({"name": "nosuch"}, ["unknown benchmark 'nosuch'", "custom-*"]),
        ({"name": "custom-x"}, ["needs a dataset"]),
        ({"name": "custom-x", "dataset": "scaidrive://org/missing.jsonl"}, ["does not exist"]),
        ({"name": "custom-x", "dataset": ds, "num_samples": 0}, ["num_samples", ">= 1"]),
        ({"name": "custom-x", "dataset": ds, "num_samples": -3}, ["num_samples"]),
        ({"name": "custom-x", "dataset": ds, "num_samples": "many"}, ["num_samples"]),
        ({"name": "custom-x", "dataset": ds, "parameters": {"temperature": 0}}, ["strings"]),
        ({"name": "custom-x", "dataset": ds, "parameters": {"match": "fuzzy"}}, ["exact"]),
        ({"name": "custom-x", "dataset": ds, "parameters": {"max_new_tokens": "-1"}}, ["max_new"]),
        ({"name": "custom-x", "dataset": ds, "parameters": {"colour": "red"}}, ["colour"]),
        ({"name": "custom-x", "dataset": ds, "num_sample": 3}, ["num_sample", "known"]),
        ({"name": ""}, ["name is required"]),
        (42, ["benchmark name"]),
    ]
    for spec, words in cases:
        assert _error(submit(api, job_id, spec), 400, *words) == "INVALID_ARGUMENT"


def test_400_for_bad_bodies(scored_setup, api: httpx.Client) -> None:
    _, job_id, _, benchmark, _ = scored_setup
    _error(api.post("/evaluations", content=b"{not json"), 400, "not valid JSON")
    _error(api.post("/evaluations", json={"benchmarks": [benchmark]}), 400, "job_id is required")
    _error(api.post("/evaluations", json={"job_id": job_id, "benchmarks": []}), 400, "non-empty")
    many = {"job_id": job_id, "benchmarks": [benchmark] * 101}
    _error(api.post("/evaluations", json=many), 400, "at most 100 benchmarks")
    _error(api.post("/evaluations", json={"job_id": 5, "benchmarks": ["x"]}), 400, "string")
    body = {"job_id": job_id, "benchmarks": [benchmark], "colour": "red"}
    _error(api.post("/evaluations", json=body), 400, "colour")
    _error(api.post("/jobs", json={"job_id": "j", "model_uri": "m", "status": "DONE"}), 400, "DONE")
    _error(api.post("/jobs", json={"job_id": "j"}), 400, "model_uri is required")


def test_400_for_a_model_the_server_cannot_load(
    scored_setup, api: httpx.Client, unique: str
) -> None:
    coord, job_id, _, benchmark, _ = scored_setup
    cases = {
        "scaidrive://org/models/none": "no model",
        "scaidrive://../outside": "escapes",
        "http://example.com/model": "unsupported URI scheme",
    }
    for uri, words in cases.items():
        _error(submit(api, job_id, benchmark, model_uri=uri), 400, words)
    bad = coord.drive_root / f"org/models/bad-{unique}"
    bad.mkdir(parents=True)
    (bad / "scaimind-model.json").write_text('{"backend": "python", "target": "nosuch.mod:X"}')
    resp = submit(api, job_id, benchmark, model_uri=f"scaidrive://org/models/bad-{unique}")
    _error(resp, 400, "nosuch.mod:X", "cannot be imported")
    (bad / "scaimind-model.json").write_text('{"backend": "tpu"}')
    _error(
        submit(api, job_id, benchmark, model_uri=f"scaidrive://org/models/bad-{unique}"), 400, "tpu"
    )


def test_400_for_bad_page_size_and_token(api: httpx.Client) -> None:
    for size in ("0", "101", "-1", "ten"):
        _error(api.get("/evaluations", params={"page_size": size}), 400, "page_size")
    for token in ("garbage", "WzEsMl0", "bnVsbA"):
        _error(api.get("/evaluations", params={"page_token": token}), 400, "page_token")


def test_413_for_an_oversized_body(api: httpx.Client) -> None:
    big = b'{"job_id": "' + b"x" * (1 << 20) + b'"}'
    assert _error(api.post("/evaluations", content=big), 413) == "PAYLOAD_TOO_LARGE"

    def chunks():  # no Content-Length: the limit holds while streaming too
        for _ in range(20):
            yield b" " * 65536

    _error(api.post("/jobs", content=chunks()), 413)


def test_422_for_a_body_that_is_not_an_object(api: httpx.Client) -> None:
    assert _error(api.post("/evaluations", json=["mmlu"]), 422, "JSON object") == (
        "UNPROCESSABLE_ENTITY"
    )


def test_405_for_a_wrong_method(api: httpx.Client) -> None:
    _error(api.delete("/evaluations"), 405)


def test_register_job_raises_the_servers_message(coordinator: LocalCoordinator) -> None:
    with pytest.raises(ApiCallError, match="HTTP 400: status 'DONE' is not one of") as info:
        coordinator.register_job("job_x", "scaidrive://m", status="DONE")
    assert coordinator.api_key not in str(info.value)
