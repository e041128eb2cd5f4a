"""A fault-injecting HTTP/1.1 reverse proxy on loopback, for Jepsen-style tests of the wire.

Clients talk to `FaultProxy.url` as if it were the coordinator. Each request is read in full,
then a plan decides whether it passes through untouched or meets a fault:

- ``latency``: wait `seconds`, then forward normally;
- ``status``: answer `status` (a 5xx burst) without forwarding;
- ``throttle``: answer 429 with ``Retry-After: <retry_after>`` without forwarding;
- ``reset_before``: reset the client connection before anything reaches the server;
- ``reset_after``: forward the request, drop the answer, reset the client connection (the
  dangerous one: a POST took effect but the client cannot know);
- ``truncate``: forward, then send the headers and half of the body, and close;
- ``garbage``: forward, then answer 200 with a body that is not JSON;
- ``stall``: forward, then hold the answer for `seconds` and close without sending it.

Every fault is counted in `FaultProxy.counts`; requests that reached the server are counted per
``METHOD path`` in `FaultProxy.forwarded`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import socket
import struct
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

KINDS = (
    "latency",
    "status",
    "throttle",
    "reset_before",
    "reset_after",
    "truncate",
    "garbage",
    "stall",
)


@dataclass(frozen=True)
class Fault:
    """One fault to inject into one request."""

    kind: str
    seconds: float = 0.2
    status: int = 503
    retry_after: float = 0.2

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {', '.join(KINDS)}")


@dataclass
class Request:
    """A request as the proxy read it from the client."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def path(self) -> str:
        """The target without its query string."""
        return self.target.split("?", 1)[0]

    def header(self, name: str) -> str | None:
        """The first value of a header, case-blind."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def identity(self) -> str:
        """What stays the same across retries of one logical request."""
        digest = hashlib.sha256(self.body).hexdigest()[:16]
        return f"{self.method} {self.target} {digest}"


Plan = Callable[[Request], "Fault | None"]
"""Decides the fault (or None) for each request; called on the proxy's thread."""


def match_all(_request: Request) -> bool:
    """The default matcher: every request may meet a fault."""
    return True


@dataclass
class ScriptedPlan:
    """Faults applied in order to the requests that `match`, then clean passage."""

    faults: list[Fault]
    match: Callable[[Request], bool] = match_all

    def __call__(self, request: Request) -> Fault | None:
        if self.faults and self.match(request):
            return self.faults.pop(0)
        return None


@dataclass
class RandomPlan:
    """A seeded random plan: each matching request meets a fault with probability `rate`.

    No logical request (same method, target and body) meets more than `max_streak` faults in a
    row, so a client that retries a few times always gets through eventually.
    """

    seed: int
    rate: float = 0.3
    faults: tuple[Fault, ...] = tuple(Fault(kind) for kind in KINDS)
    max_streak: int = 2
    match: Callable[[Request], bool] = match_all
    _random: random.Random = field(init=False, repr=False)
    _streaks: Counter[str] = field(init=False, repr=False, default_factory=Counter)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def __call__(self, request: Request) -> Fault | None:
        key = request.identity()
        if (
            self.match(request)
            and self._streaks[key] < self.max_streak
            and self._random.random() < self.rate
        ):
            self._streaks[key] += 1
            return self._random.choice(self.faults)
        self._streaks.pop(key, None)
        return None


class _Reset(Exception):
    """The client connection must be reset now."""


_HOP_HEADERS = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te"}


async def _read_body(reader: asyncio.StreamReader, headers: list[tuple[str, str]]) -> bytes:
    """Read a message body framed by Content-Length or chunked encoding."""
    lower = {k.lower(): v for k, v in headers}
    if "chunked" in lower.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0].strip(), 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = int(lower.get("content-length", "0") or 0)
    return await reader.readexactly(length) if length else b""


def _parse_head(head: bytes) -> tuple[str, list[tuple[str, str]]]:
    """Split a message head into its first line and its headers."""
    lines = head.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if line:
            key, _, value = line.partition(":")
            headers.append((key.strip(), value.strip()))
    return lines[0], headers


def _render(first: str, headers: Iterable[tuple[str, str]], body: bytes) -> bytes:
    """Serialise a message with a Content-Length of `body`."""
    lines = [first]
    lines += [f"{k}: {v}" for k, v in headers if k.lower() not in _HOP_HEADERS | {"content-length"}]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _error_response(status: int, headers: list[tuple[str, str]] | None = None) -> bytes:
    """A JSON error answer in the coordinator's error shape."""
    body = b'{"error": {"code": "injected", "message": "fault injected by the test proxy"}}'
    extra = [("Content-Type", "application/json"), *(headers or [])]
    return _render(f"HTTP/1.1 {status} Injected", extra, body)


class FaultProxy:
    """A reverse proxy on a loopback port in front of `upstream`, injecting faults per a plan."""

    def __init__(self, upstream: str, plan: Plan | None = None) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.plan: Plan = plan or (lambda _request: None)
        self.counts: Counter[str] = Counter()
        self.forwarded: Counter[str] = Counter()
        self.requests = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.url = ""

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        port = future.result(timeout=10)
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    @property
    def faults_injected(self) -> int:
        """How many faults of any kind were injected so far."""
        with self._lock:
            return sum(self.counts.values())

    async def _start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=2**24)
        return int(self._server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            while await self._one(reader, writer):
                pass
        except _Reset:
            sock = writer.get_extra_info("socket")
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            writer.transport.abort()
        except asyncio.CancelledError:  # the proxy is shutting down: drop the connection quietly
            writer.transport.abort()
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the client connection must end."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        first, headers = _parse_head(head)
        method, target, _version = first.split(" ", 2)
        request = Request(method, target, headers, await _read_body(reader, headers))
        with self._lock:
            self.requests += 1
            planned = self.plan(request)
            if planned is not None:
                self.counts[planned.kind] += 1
        fault = planned or Fault("latency", seconds=0.0)
        if fault.kind in ("status", "throttle"):
            retry = [("Retry-After", f"{fault.retry_after:g}")] if fault.kind == "throttle" else []
            writer.write(_error_response(429 if retry else fault.status, retry))
            await writer.drain()
            return True
        if fault.kind == "reset_before":
            raise _Reset
        await asyncio.sleep(fault.seconds if fault.kind == "latency" else 0)
        status_line, response_headers, body = await self._forward(request)
        if fault.kind == "reset_after":
            raise _Reset
        if fault.kind == "stall":
            await asyncio.sleep(fault.seconds)
            return False
        if fault.kind == "truncate":
            full = _render(status_line, response_headers, body)
            writer.write(full[: len(full) - max(1, len(body) // 2)])
            await writer.drain()
            return False
        if fault.kind == "garbage":
            status_line, body = "HTTP/1.1 200 OK", b"<html>502 Bad Gateway</html> not json {"
            response_headers = [("Content-Type", "application/json")]
        keep_alive = (request.header("connection") or "").lower() != "close"
        response_headers = [
            *response_headers,
            ("Connection", "keep-alive" if keep_alive else "close"),
        ]
        writer.write(_render(status_line, response_headers, body))
        await writer.drain()
        return keep_alive

    async def _forward(self, request: Request) -> tuple[str, list[tuple[str, str]], bytes]:
        """Send the request upstream on a fresh connection and read the whole answer."""
        up_reader, up_writer = await asyncio.open_connection(*self._upstream, limit=2**24)
        try:
            headers = [*request.headers, ("Connection", "close")]
            up_writer.write(
                _render(f"{request.method} {request.target} HTTP/1.1", headers, request.body)
            )
            await up_writer.drain()
            with self._lock:
                self.forwarded[f"{request.method} {request.path}"] += 1
            status_line, response_headers = _parse_head(await up_reader.readuntil(b"\r\n\r\n"))
            lower = {k.lower() for k, _ in response_headers}
            if "content-length" in lower or "transfer-encoding" in lower:
                body = await _read_body(up_reader, response_headers)
            else:
                body = await up_reader.read()
            return status_line, response_headers, body
        finally:
            up_writer.close()
