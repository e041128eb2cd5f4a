"""The sync Client against an in-memory coordinator (httpx.MockTransport): arguments, retries, errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

import scaimind_nb as sn
from scaimind_nb import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    Benchmark,
    Client,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    RateLimitError,
    ScaimindValueError,
    ServerError,
    UnprocessableEntityError,
)

from ._fakes import HOST, KEY, FakeCoordinator, FakeTime, raise_, respond

# --- construction ---------------------------------------------------------------------------


def test_host_and_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCAIGRID_HOST", "https://grid.example.com/")
    monkeypatch.setenv("SCAIGRID_API_KEY", KEY)
    with Client() as client:
        assert client.host == "https://grid.example.com"
        assert repr(client) == "Client(host='https://grid.example.com', api_key='***')"
    assert client._http.is_closed


@pytest.mark.parametrize(
    ("unset", "named"),
    [("SCAIGRID_HOST", "SCAIGRID_HOST"), ("SCAIGRID_API_KEY", "SCAIGRID_API_KEY")],
)
def test_missing_host_or_key_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, unset: str, named: str
) -> None:
    monkeypatch.setenv("SCAIGRID_HOST", HOST)
    monkeypatch.setenv("SCAIGRID_API_KEY", KEY)
    monkeypatch.delenv(unset)
    with pytest.raises(ScaimindValueError, match=named):
        Client()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"timeout": None}, "hang forever"),
        ({"timeout": httpx.Timeout(None)}, "hang forever"),
        ({"timeout": -1}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"wait_timeout": float("inf")}, "wait_timeout"),
        ({"host": "grid.example.com"}, "http"),
    ],
)
def test_bad_constructor_arguments(kwargs: dict[str, Any], match: str) -> None:
    kwargs = {"host": HOST, "api_key": KEY, **kwargs}
    with pytest.raises(ValueError, match=match):
        Client(**kwargs)


# --- submit ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("", "scaidrive://o/m", ["mmlu"]), "job_id"),
        (("job_1", "", ["mmlu"]), "model_uri"),
        (("job_1", "scaidrive://o/m", []), "at least one"),
        (("job_1", "scaidrive://o/m", ["custom-qa"]), "dataset"),
        (("job_1", "scaidrive://o/m", [{"name": "mmlu", "num_samples": 0}]), "num_samples"),
        (("job_1", "scaidrive://o/m", [{"name": "mmlu", "parameters": {"shots": 5}}]), "'shots'"),
        (("job_1", "scaidrive://o/m", [{"name": "mmlu", "samples": 5}]), "'samples'"),
        (("job_1", "scaidrive://o/m", [3]), "name, a dict or a Benchmark"),
    ],
)
def test_submit_validates_before_any_request(
    make_client, fake: FakeCoordinator, args: tuple, match: str
) -> None:
    client = make_client()
    with pytest.raises(ValueError, match=match) as info:
        client.submit(*args)
    assert "\n" not in str(info.value)
    assert fake.requests == []


def test_submit_sends_rest_body_and_returns_evaluation(make_client, fake: FakeCoordinator) -> None:
    client = make_client()
    ev = client.submit(
        "job_1",
        "scaidrive://o/m",
        [
            "mmlu",
            {"name": "custom-qa", "dataset": "scaidrive://o/qa.jsonl", "num_samples": 10},
            Benchmark("humaneval", parameters={"k": "1"}),
        ],
        checkpoint_id="step-5",
    )
    (post,) = fake.calls("POST")
    assert json.loads(post.content) == {
        "job_id": "job_1",
        "model_uri": "scaidrive://o/m",
        "checkpoint_id": "step-5",
        "benchmarks": [
            {"name": "mmlu"},
            {"name": "custom-qa", "dataset": "scaidrive://o/qa.jsonl", "num_samples": 10},
            {"name": "humaneval", "parameters": {"k": "1"}},
        ],
    }
    assert post.headers["authorization"] == f"Bearer {KEY}"
    assert post.headers["idempotency-key"]
    assert ev.evaluation_id == "eval_0001" and ev.status is sn.Status.PENDING
    assert ev.job_id == "job_1" and ev.checkpoint_id == "step-5"
    assert [b.name for b in ev.benchmarks] == ["mmlu", "custom-qa", "humaneval"]


# --- retries --------------------------------------------------------------------------------


def test_get_retries_5xx_with_backoff_then_succeeds(
    make_client, fake: FakeCoordinator, clock: FakeTime
) -> None:
    fake.add({"evaluation_id": "eval_1", "job_id": "job_1"})
    fake.faults = [respond(503, {"error": {"message": "busy"}}), respond(500, {"message": "oops"})]
    ev = make_client().get("eval_1")
    assert ev.evaluation_id == "eval_1"
    gets = fake.calls("GET")
    assert [r.headers["x-scaimind-retry-count"] for r in gets] == ["0", "1", "2"]
    assert len({r.headers["x-request-id"] for r in gets}) == 1
    assert 0.375 <= clock.sleeps[0] <= 0.5 and 0.75 <= clock.sleeps[1] <= 1.0


def test_retry_after_seconds_and_http_date_are_honoured(
    make_client, fake: FakeCoordinator, clock: FakeTime
) -> None:
    fake.add({"evaluation_id": "eval_1"})
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    fake.faults = [
        respond(429, headers={"Retry-After": "3"}),
        respond(503, headers={"Retry-After": when}),
    ]
    make_client().get("eval_1")
    assert clock.sleeps[0] == 3.0
    assert 27 <= clock.sleeps[1] <= 30


def test_retry_after_longer_than_budget_is_not_waited_out(
    make_client, fake: FakeCoordinator, clock: FakeTime
) -> None:
    fake.add({"evaluation_id": "eval_1"})
    fake.faults = [
        respond(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "600"})
    ]
    with pytest.raises(RateLimitError, match="slow down"):
        make_client(call_deadline=60).get("eval_1")
    assert clock.sleeps == []
    assert len(fake.requests) == 1


def test_retries_exhausted_raise_server_error(make_client, fake: FakeCoordinator) -> None:
    fake.faults = [
        respond(
            502,
            {"error": {"code": "UNAVAILABLE", "message": "gateway"}},
            headers={"x-request-id": "req-9"},
        )
    ] * 3
    with pytest.raises(ServerError) as info:
        make_client(max_retries=2).get("eval_1")
    err = info.value
    assert (err.status_code, err.code, err.message, err.request_id) == (
        502,
        "UNAVAILABLE",
        "gateway",
        "req-9",
    )
    assert len(fake.requests) == 3


@pytest.mark.parametrize(
    ("exc", "raised"),
    [
        (httpx.ConnectError, APIConnectionError),
        (httpx.ReadTimeout, APITimeoutError),
        (httpx.RemoteProtocolError, APIConnectionError),
    ],
)
def test_transport_errors_are_retried_then_typed(
    make_client, fake: FakeCoordinator, exc: type[Exception], raised: type[Exception]
) -> None:
    fake.faults = [raise_(exc)] * 2
    with pytest.raises(raised) as info:
        make_client(max_retries=1).get("eval_1")
    assert isinstance(info.value.__cause__, exc)
    assert len(fake.requests) == 2


def test_stale_keepalive_reset_is_retried(make_client, fake: FakeCoordinator) -> None:
    fake.add({"evaluation_id": "eval_1"})
    fake.faults = [raise_(httpx.RemoteProtocolError)]
    assert make_client().get("eval_1").evaluation_id == "eval_1"


@pytest.mark.parametrize(
    ("status", "body", "cls", "message", "code"),
    [
        (
            400,
            {"error": {"code": "INVALID_ARGUMENT", "message": "unknown benchmark"}},
            BadRequestError,
            "unknown benchmark",
            "INVALID_ARGUMENT",
        ),
        (
            401,
            {"error": {"code": "UNAUTHENTICATED", "message": "bad key"}},
            AuthenticationError,
            "bad key",
            "UNAUTHENTICATED",
        ),
        (
            403,
            {"code": 7, "message": "denied", "details": []},
            PermissionDeniedError,
            "denied",
            "7",
        ),
        (404, {"code": 5, "message": "not found"}, NotFoundError, "not found", "5"),
        (409, {"error": {"message": "exists"}}, ConflictError, "exists", None),
        (422, {"detail": "bad field"}, UnprocessableEntityError, "bad field", None),
    ],
)
def test_status_errors_are_typed_and_not_retried(
    make_client, fake: FakeCoordinator, status, body, cls, message, code
) -> None:
    fake.faults = [respond(status, body, headers={"x-request-id": "rid"})]
    with pytest.raises(cls) as info:
        make_client().get("eval_1")
    assert (info.value.status_code, info.value.message, info.value.code, info.value.request_id) == (
        status,
        message,
        code,
        "rid",
    )
    assert len(fake.requests) == 1


def test_plain_text_error_body_is_the_message(make_client, fake: FakeCoordinator) -> None:
    fake.faults = [respond(418, text="I'm a teapot")]
    with pytest.raises(sn.APIStatusError, match="teapot") as info:
        make_client().get("eval_1")
    assert type(info.value) is sn.APIStatusError


@pytest.mark.parametrize(
    ("text", "attempts"),
    [
        ("<html>oops</html>", 3),
        ('{"data": ', 3),
        ("null", 1),
    ],  # a garbled body is retried like a 5xx
)
def test_malformed_success_body_is_protocol_error(
    make_client, fake: FakeCoordinator, text: str, attempts: int
) -> None:
    fake.faults = [respond(200, text=text)] * 3
    with pytest.raises(ProtocolError) as info:
        make_client().get("eval_1")
    assert len(str(info.value)) < 400
    assert len(fake.requests) == attempts


def test_protocol_error_excerpt_is_short_and_redacted(make_client, fake: FakeCoordinator) -> None:
    fake.faults = [respond(200, text=f"<html>Authorization: Bearer {KEY}" + "x" * 1000)]
    with pytest.raises(ProtocolError) as info:
        make_client(max_retries=0).get("eval_1")
    assert (
        KEY not in str(info.value)
        and "***" in info.value.excerpt
        and len(info.value.excerpt) <= 200
    )


# --- pagination -----------------------------------------------------------------------------


def _pages(fake: FakeCoordinator, pages: dict[str | None, dict[str, Any]]) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": pages[request.url.params.get("page_token")]})

    fake.page_override = answer


def test_pagination_continues_across_empty_page_and_stops_on_empty_token(
    make_client, fake: FakeCoordinator
) -> None:
    _pages(
        fake,
        {
            None: {
                "evaluations": [{"job_id": "eval_1"}],
                "next_page_token": "a",
                "total_count": "3",
            },
            "a": {"next_page_token": "b"},
            "b": {
                "evaluations": [{"job_id": "eval_2"}, {"job_id": "eval_3"}],
                "next_page_token": "",
            },
        },
    )
    client = make_client()
    assert [e.evaluation_id for e in client.iter_evaluations(page_size=2)] == [
        "eval_1",
        "eval_2",
        "eval_3",
    ]
    assert [r.url.params.get("page_token") for r in fake.requests] == [None, "a", "b"]
    page = client.list_evaluations()
    assert page.total_count == 3 and page.next_page_token == "a"


@pytest.mark.parametrize("last", [{"next_page_token": None}, {}, {"nextPageToken": ""}])
def test_pagination_stops_on_missing_null_or_empty_token(
    make_client, fake: FakeCoordinator, last: dict
) -> None:
    _pages(fake, {None: {"evaluations": [{"job_id": "eval_1"}], **last}})
    assert len(list(make_client().iter_evaluations())) == 1
    assert len(fake.requests) == 1


def test_repeated_page_token_is_an_error(make_client, fake: FakeCoordinator) -> None:
    _pages(
        fake,
        {
            None: {"evaluations": [], "next_page_token": "a"},
            "a": {"evaluations": [{"job_id": "eval_1"}], "next_page_token": "a"},
        },
    )
    with pytest.raises(ProtocolError, match="repeated a page token"):
        list(make_client().iter_evaluations())


def test_iter_limit_stops_fetching(make_client, fake: FakeCoordinator) -> None:
    for i in range(7):
        fake.add({"evaluation_id": f"eval_{i}"}, age=i)
    evs = list(make_client().iter_evaluations(page_size=3, limit=4))
    assert [e.evaluation_id for e in evs] == ["eval_0", "eval_1", "eval_2", "eval_3"]
    assert len(fake.calls("GET")) == 2
    assert list(make_client().iter_evaluations(limit=0)) == []


@pytest.mark.parametrize("size", [0, 1001, "20"])
def test_bad_page_size(make_client, size: Any) -> None:
    with pytest.raises(ScaimindValueError, match="page_size"):
        make_client().list_evaluations(page_size=size)


# --- other calls ----------------------------------------------------------------------------


def test_cancel_get_job_list_benchmarks(make_client, fake: FakeCoordinator) -> None:
    fake.add({"evaluation_id": "eval_1", "status": "RUNNING"})
    client = make_client()
    assert client.cancel("eval_1").status is sn.Status.CANCELLED
    assert client.get_job("job_1") == {
        "job_id": "job_1",
        "model_uri": "scaidrive://o/m",
        "status": "COMPLETED",
    }
    assert client.list_benchmarks() == ["mmlu", "humaneval"]


def test_ids_are_path_quoted(make_client, fake: FakeCoordinator) -> None:
    with pytest.raises(NotFoundError):
        make_client().get("../jobs/x")
    assert fake.requests[0].url.raw_path.endswith(b"/evaluations/..%2Fjobs%2Fx")


def test_each_client_masks_its_own_key_and_only_while_it_lives(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import gc
    import logging

    from scaimind_nb import Client

    log = logging.getLogger("scaimind_nb")
    first, second = "sk-first-" + "a" * 16, "sk-second-" + "b" * 16

    def masking() -> list[str]:
        return sorted(
            f.secret for f in log.filters if getattr(f, "secret", None) in (first, second)
        )

    clients = [Client("https://h.test", first), Client("https://h.test", second)]
    assert masking() == [first, second]  # one filter per client, not a growing global set
    with caplog.at_level(logging.INFO, logger="scaimind_nb"):
        log.info("keys %s and %s", first, second)
    assert caplog.records[-1].getMessage() == "keys *** and ***"
    for client in clients:
        client.close()
    del clients, client
    gc.collect()
    assert masking() == []  # a collected client leaves nothing behind
