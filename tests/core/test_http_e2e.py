"""The sync client over real loopback HTTP (uvicorn in a thread): keep-alive, real timeouts, secrets."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
import traceback
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from scaimind_nb import (
    APITimeoutError,
    AuthenticationError,
    Client,
    ProtocolError,
    ScaimindError,
    ServerError,
)

from ._fakes import KEY

PORTS: list[int] = []
SLOW_ATTEMPTS: list[str] = []
RELEASE = threading.Event()
"""Set by a test once its client gave up: a "slow" request is held until then (at most 20 s)."""


async def get_evaluation(request: Request) -> JSONResponse | PlainTextResponse:
    eid = request.path_params["eid"]
    assert request.client is not None
    PORTS.append(request.client.port)
    auth = request.headers.get("authorization", "")
    if auth != f"Bearer {KEY}":
        return JSONResponse(
            {"error": {"code": "UNAUTHENTICATED", "message": f"bad credentials {auth}"}}, 401
        )
    if eid == "slow":  # held until the test releases it: only a client-side timeout ends it early
        SLOW_ATTEMPTS.append(request.headers.get("x-scaimind-retry-count", ""))
        await asyncio.get_running_loop().run_in_executor(None, RELEASE.wait, 20)
    if eid == "echo":  # a misbehaving server that echoes the key back
        return JSONResponse({"error": {"message": f"failed for {auth}"}}, 500)
    if eid == "html":
        return PlainTextResponse(f"<html>proxy error, header was {auth}</html>")
    return JSONResponse(
        {
            "data": {
                "evaluation_id": eid,
                "status": "COMPLETED",
                "results": [{"benchmark": "mmlu", "score": 0.5}],
            }
        }
    )


APP = Starlette(routes=[Route("/v1/modules/scaimind/evaluations/{eid}", get_evaluation)])


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(APP, log_level="warning", lifespan="off", timeout_keep_alive=30)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(10)
    sock.close()


def test_keep_alive_reuses_the_connection(server_url: str) -> None:
    PORTS.clear()
    with Client(server_url, KEY) as client:
        assert client.get("eval_1").score("mmlu") == 0.5
        assert client.get("eval_2").evaluation_id == "eval_2"
    assert len(PORTS) == 2 and PORTS[0] == PORTS[1]


@pytest.fixture
def held() -> Iterator[list[str]]:
    """The retry counts of the "slow" attempts the server is holding; released at the end."""
    SLOW_ATTEMPTS.clear()
    RELEASE.clear()
    yield SLOW_ATTEMPTS
    RELEASE.set()


def test_real_read_timeout_is_typed_and_retried(server_url: str, held: list[str]) -> None:
    # the server holds the request until released: only the client's own timeout can end it
    with Client(server_url, KEY, timeout=0.3, max_retries=1) as client:
        with pytest.raises(APITimeoutError):
            client.get("slow")
        assert not RELEASE.is_set()  # it gave up while the server still held the request
    assert held == ["0", "1"]  # one attempt and one retry, then the typed error


def test_call_deadline_caps_all_retries(server_url: str, held: list[str]) -> None:
    # a 5 s attempt timeout and 5 retries would be 30 s; the 0.5 s call deadline cuts the
    # first attempt short and leaves no budget for another
    with Client(server_url, KEY, timeout=5, max_retries=5, call_deadline=0.5) as client:
        with pytest.raises(APITimeoutError):
            client.get("slow")
        assert not RELEASE.is_set()
    assert held == ["0"]


def test_api_key_never_leaks(
    server_url: str,
    held: list[str],
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seen: list[str] = []
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "scaimind_nb"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        with Client(server_url, KEY, timeout=0.3, max_retries=1) as client:
            seen.append(repr(client))
            seen.append(str(client.__dict__))
            seen.append(repr(client._core.config))
            client.get("eval_1")
            for eid, cls in (
                ("echo", ServerError),
                ("html", ProtocolError),
                ("slow", APITimeoutError),
            ):
                with pytest.raises(cls) as info:
                    client.get(eid)
                seen.append(_describe(info.value))
        with (
            Client(server_url, "wrong-" + KEY[::-1]) as other,
            pytest.raises(AuthenticationError) as info,
        ):
            other.get("eval_1")
        seen.append(_describe(info.value))
        logging.getLogger("scaimind_nb").debug("Authorization: Bearer %s", KEY)
    finally:
        for name in ("httpx", "httpcore", "scaimind_nb"):
            logging.getLogger(name).setLevel(logging.NOTSET)
    out = capsys.readouterr()
    records = [r.getMessage() for r in caplog.records]
    assert any("HTTP Request" in m for m in records), "httpx debug logging was not captured"
    assert any("send_request_headers" in m for m in records), (
        "httpcore debug logging was not captured"
    )
    blob = "\n".join([*seen, *records, caplog.text, out.out, out.err])
    assert KEY not in blob
    assert "***" in blob


def _describe(exc: ScaimindError) -> str:
    parts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    parts += [repr(v) for v in vars(exc).values()]
    return "\n".join(parts)
