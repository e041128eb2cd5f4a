"""Every 4xx the coordinator answers, each as `{"error": {"code", "message"}}`; the error
tree behind them; and the client side's one-line errors (httpx, never the key)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import scaimind_local
from scaimind_local import ApiCallError, LocalCoordinator
from scaimind_local._app import MAX_DEPTH, parse_json
from scaimind_local._errors import (
    ApiError,
    BadRequest,
    FailedPrecondition,
    HeadersTooLarge,
    InvalidBenchmark,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    Unauthenticated,
    UnprocessableEntity,
)
from scaimind_nb._contract import ErrorCode

from ._util import API, submit, wait_for


def _error(resp: httpx.Response, status: int, *words: str) -> str:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert set(error) == {"code", "message"}
    for word in words:
        assert word in error["message"], error["message"]
    return str(error["code"])


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong", "Basic abc", "Bearer", "Bearerkey", "Token x", ""]
)
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


def test_each_error_class_is_one_status_and_its_code() -> None:
    statuses = {
        BadRequest: 400,
        Unauthenticated: 401,
        NotFound: 404,
        RequestTimeout: 408,
        FailedPrecondition: 409,
        PayloadTooLarge: 413,
        UnprocessableEntity: 422,
        HeadersTooLarge: 431,
    }
    for cls, status in statuses.items():
        error = cls("why")
        assert isinstance(error, ApiError) and error.status == status and error.message == "why"
        assert error.code == ErrorCode.for_status(status) != ErrorCode.UNKNOWN
    assert ApiError("x", status=405).code == ErrorCode.METHOD_NOT_ALLOWED


def test_invalid_benchmark_is_the_400_runners_raise() -> None:
    assert issubclass(InvalidBenchmark, BadRequest) and issubclass(InvalidBenchmark, ValueError)
    assert scaimind_local.InvalidBenchmark is InvalidBenchmark
    assert str(InvalidBenchmark("mmlu: no data")) == "mmlu: no data"


def _cli(env: dict[str, str], *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scaimind_local", *args],
        env={**os.environ, **env},
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        **kwargs,  # type: ignore[call-overload]
    )


def test_cli_list_into_a_closed_pipe_ends_quietly(scored_setup, api: httpx.Client) -> None:
    """`scaimind-local list | head`: no BrokenPipeError traceback when the reader leaves."""
    coord, job_id, _, benchmark, _ = scored_setup
    assert submit(api, job_id, benchmark).status_code == 200
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line is written
    try:
        done = _cli(coord.env(), "list", "--limit", "5", stdout=write)
    finally:
        os.close(write)
    assert done.stderr == "", done.stderr
    assert done.returncode == 141


def test_cli_errors_are_one_line_and_never_the_key(coordinator: LocalCoordinator) -> None:
    unreachable = _cli({**coordinator.env(), "SCAIGRID_HOST": "http://127.0.0.1:9"}, "list")
    wrong_key = _cli({**coordinator.env(), "SCAIGRID_API_KEY": "sk-wrong-key"}, "list")
    for done, words in [(unreachable, "cannot reach http://127.0.0.1:9"), (wrong_key, "HTTP 401")]:
        assert done.returncode != 0
        assert done.stderr.startswith(f"error: {words}") and done.stderr.count("\n") == 1
        assert coordinator.api_key not in done.stderr and "sk-wrong-key" not in done.stderr


def test_no_module_brings_a_third_http_client() -> None:
    """httpx is the one HTTP client (plus Starlette/uvicorn on the serving side)."""
    package = Path(scaimind_local.__file__).parent
    banned = {"urllib.request", "http.client", "requests", "aiohttp", "urllib3"}
    for file in package.rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not banned & set(names), f"{file.name} imports {banned & set(names)}"


def test_request_json_nests_at_most_max_depth_levels() -> None:
    assert MAX_DEPTH == 32
    assert parse_json("[" * 32 + "]" * 32, "body")
    with pytest.raises(BadRequest, match="nested more than 32 levels"):
        parse_json("[" * 33 + "]" * 33, "body")
    with pytest.raises(BadRequest, match="nested more than 32 levels"):
        parse_json('{"a":' * 33 + "1" + "}" * 33, "body")
