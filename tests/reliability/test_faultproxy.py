"""The fault proxy itself, against a tiny stdlib HTTP server: each fault does what it says."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from ._faultproxy import KINDS, Fault, FaultProxy, RandomPlan, Request, ScriptedPlan


class _Tiny(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    posts: list[bytes] = []

    def _answer(self, payload: object, status: int = 200) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer({"path": self.path, "pad": "x" * 64})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.posts.append(body)
        self._answer({"created": len(self.posts)}, 201)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def tiny() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Tiny)
    _Tiny.posts = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _client(proxy: FaultProxy) -> httpx.Client:
    return httpx.Client(base_url=proxy.url, timeout=2.0)


def test_clean_passage_keeps_connection_and_counts_forwards(tiny: str) -> None:
    with FaultProxy(tiny) as proxy, _client(proxy) as client:
        for i in range(3):
            answer = client.get(f"/thing/{i}?q=1")
            assert answer.json()["path"] == f"/thing/{i}?q=1"
        assert client.post("/items", json={"a": 1}).status_code == 201
    assert proxy.faults_injected == 0
    assert proxy.requests == 4
    assert proxy.forwarded["GET /thing/0"] == 1
    assert proxy.forwarded["POST /items"] == 1
    assert _Tiny.posts == [b'{"a":1}']


def test_latency_delays_but_delivers(tiny: str) -> None:
    plan = ScriptedPlan([Fault("latency", seconds=0.3)])
    with FaultProxy(tiny, plan) as proxy, _client(proxy) as client:
        started = time.monotonic()
        assert client.get("/slow").status_code == 200
        assert time.monotonic() - started >= 0.3
    assert proxy.counts == {"latency": 1}


def test_status_and_throttle_answer_without_forwarding(tiny: str) -> None:
    plan = ScriptedPlan([Fault("status", status=502), Fault("throttle", retry_after=1.5)])
    with FaultProxy(tiny, plan) as proxy, _client(proxy) as client:
        first = client.post("/items", json={})
        second = client.post("/items", json={})
        third = client.post("/items", json={})
    assert first.status_code == 502
    assert first.json()["error"]["code"] == "injected"
    assert second.status_code == 429
    assert second.headers["retry-after"] == "1.5"
    assert third.status_code == 201
    assert len(_Tiny.posts) == 1
    assert proxy.counts == {"status": 1, "throttle": 1}


@pytest.mark.parametrize(("kind", "reached"), [("reset_before", 0), ("reset_after", 1)])
def test_resets_before_and_after_forwarding(tiny: str, kind: str, reached: int) -> None:
    with (
        FaultProxy(tiny, ScriptedPlan([Fault(kind)])) as proxy,
        _client(proxy) as client,
        pytest.raises(httpx.TransportError),
    ):
        client.post("/items", json={"n": 1})
    assert len(_Tiny.posts) == reached
    assert proxy.counts[kind] == 1


def test_truncated_body_is_a_protocol_error(tiny: str) -> None:
    with FaultProxy(tiny, ScriptedPlan([Fault("truncate")])) as proxy, _client(proxy) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/cut")
        assert client.get("/whole").status_code == 200


def test_garbage_body_is_not_json(tiny: str) -> None:
    with FaultProxy(tiny, ScriptedPlan([Fault("garbage")])) as proxy, _client(proxy) as client:
        answer = client.get("/junk")
    assert answer.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        answer.json()


def test_stall_outlasts_the_read_timeout(tiny: str) -> None:
    plan = ScriptedPlan([Fault("stall", seconds=5)])
    # the stall (5 s) outlasts the 0.3 s read timeout: only the timeout can end the read
    with (
        FaultProxy(tiny, plan) as proxy,
        httpx.Client(base_url=proxy.url, timeout=0.3) as client,
        pytest.raises(httpx.ReadTimeout),
    ):
        client.get("/stuck")
    assert proxy.counts == {"stall": 1}


def test_scripted_plan_only_hits_matching_requests(tiny: str) -> None:
    plan = ScriptedPlan([Fault("status")], match=lambda r: r.method == "POST")
    with FaultProxy(tiny, plan) as proxy, _client(proxy) as client:
        assert client.get("/a").status_code == 200
        assert client.post("/items", json={}).status_code == 503


def test_random_plan_is_seeded_and_bounds_streaks() -> None:
    request = Request("POST", "/items", [], b"{}")
    first = RandomPlan(seed=7, rate=0.9, max_streak=2)
    second = RandomPlan(seed=7, rate=0.9, max_streak=2)
    outcomes = [first(request) for _ in range(30)]
    assert outcomes == [second(request) for _ in range(30)]
    streak = longest = 0
    for outcome in outcomes:
        streak = streak + 1 if outcome else 0
        longest = max(longest, streak)
    assert longest == 2
    assert {f.kind for f in outcomes if f} <= set(KINDS)


def test_unknown_fault_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault kind 'boom'"):
        Fault("boom")
