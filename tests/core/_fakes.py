"""Test doubles for the core tests: an in-memory coordinator behind httpx.MockTransport, a fake
clock, and one-shot faults. Fixtures built on them live in conftest.py."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

KEY = "sk-core-" + secrets.token_hex(12)
HOST = "http://coordinator.test"
PREFIX = "/v1/modules/scaimind"

Fault = Callable[[httpx.Request, Callable[[httpx.Request], httpx.Response]], httpx.Response | None]


class FakeCoordinator:
    """A small ScaiMind API in memory: evaluations, listing newest first, jobs, faults to inject."""

    def __init__(self) -> None:
        self.evaluations: dict[str, dict[str, Any]] = {}
        self.requests: list[httpx.Request] = []
        self.faults: list[Fault] = []
        self.page_override: Callable[[httpx.Request], httpx.Response] | None = None
        self.clock = datetime.now(UTC)
        self.scripts: dict[str, list[dict[str, Any]]] = {}
        self.honour_keys = False  # like scaimind_local: dedupe submits by Idempotency-Key, echo it
        self.keys: dict[str, str] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.faults:
            fault = self.faults.pop(0)
            response = fault(request, self.route)
            if response is not None:
                return response
        return self.route(request)

    def calls(self, method: str, suffix: str = "") -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path.endswith(suffix)]

    def add(self, record: dict[str, Any], age: float = 0.0) -> dict[str, Any]:
        created = self.clock - timedelta(seconds=age)
        record = {
            "status": "PENDING",
            "checkpoint_id": "",
            "created_at": created.isoformat(),
            **record,
        }
        self.evaluations[record["evaluation_id"]] = record
        return record

    def route(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix(PREFIX)
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return httpx.Response(
                401, json={"error": {"code": "UNAUTHENTICATED", "message": "bad key"}}
            )
        if path == "/evaluations" and request.method == "POST":
            body = json.loads(request.content)
            key = request.headers.get("idempotency-key", "")
            headers = {"Idempotency-Key": key} if self.honour_keys and key else {}
            if headers and key in self.keys:
                eid = self.keys[key]
                headers["Idempotent-Replayed"] = "true"
            else:
                eid = f"eval_{len(self.evaluations) + 1:04d}"
                self.add({"evaluation_id": eid, **body})
                self.keys[key] = eid
            answer = {"data": {"evaluation_id": eid, "status": "PENDING"}}
            return httpx.Response(200, json=answer, headers=headers)
        if path == "/evaluations" and request.method == "GET":
            if self.page_override is not None:
                return self.page_override(request)
            return self._page(request)
        if path.startswith("/evaluations/") and path.endswith("/cancel"):
            eid = path.split("/")[2]
            self.evaluations[eid]["status"] = "CANCELLED"
            return httpx.Response(200, json={"data": {"evaluation_id": eid, "status": "CANCELLED"}})
        if path.startswith("/evaluations/"):
            eid = path.split("/")[2]
            if self.scripts.get(eid):
                self.evaluations[eid].update(self.scripts[eid].pop(0))
            if eid not in self.evaluations:
                return httpx.Response(
                    404, json={"code": 5, "message": f"evaluation {eid} not found"}
                )
            return httpx.Response(200, json={"data": self.evaluations[eid]})
        if path.startswith("/jobs/"):
            return httpx.Response(
                200,
                json={
                    "data": {
                        "job_id": path.split("/")[2],
                        "model_uri": "scaidrive://o/m",
                        "status": "COMPLETED",
                    }
                },
            )
        if path == "/benchmarks":
            return httpx.Response(
                200, json={"data": {"benchmarks": [{"name": "mmlu"}, {"name": "humaneval"}]}}
            )
        return httpx.Response(404, json={"detail": "no route"})

    def _page(self, request: httpx.Request) -> httpx.Response:
        size = int(request.url.params.get("page_size", "20"))
        start = int(request.url.params.get("page_token") or 0)
        newest_first = sorted(
            self.evaluations.values(), key=lambda r: r["created_at"], reverse=True
        )
        chunk = newest_first[start : start + size]
        items = [
            {
                "job_id": r["evaluation_id"],
                "name": r["evaluation_id"],
                "status": r["status"],
                "created_at": r["created_at"],
                "labels": {"type": "evaluation", "parent_job_id": r.get("job_id", "")},
            }
            for r in chunk
        ]
        token = str(start + size) if start + size < len(newest_first) else ""
        return httpx.Response(
            200,
            json={
                "data": {
                    "evaluations": items,
                    "next_page_token": token,
                    "total_count": str(len(newest_first)),
                }
            },
        )


class FakeTime:
    """A monotonic clock that only moves when the client sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


def respond(
    status: int, body: Any = None, headers: dict[str, str] | None = None, *, text: str | None = None
):
    """A fault that answers once with a fixed response."""

    def fault(request: httpx.Request, route: Any) -> httpx.Response:
        if text is not None:
            return httpx.Response(status, text=text, headers=headers)
        return httpx.Response(status, json=body if body is not None else {}, headers=headers)

    return fault


def raise_(exc_type: type[Exception], *, after_route: bool = False):
    """A fault that raises a transport error, optionally after the server processed the request."""

    def fault(request: httpx.Request, route: Any) -> None:
        if after_route:
            route(request)
        raise exc_type("simulated", request=request)

    return fault
