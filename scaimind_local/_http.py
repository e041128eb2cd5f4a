"""The HTTP server under the app: uvicorn with its httptools parser, plus the request limits.

uvicorn bounds neither the size of a request head (httptools accumulates any header) nor the
time it takes to arrive. `BoundedHttpToolsProtocol` adds both: a request line and headers over
`Limits.max_head` bytes get a 431, a head that has not arrived within
`Limits.request_timeout` seconds of its first byte (or of the connection) a 408, and a
request httptools cannot parse a 400; all three in the JSON error shape, then the connection
is closed. The body's limits (`max_body`, and the same timeout) are the app's, where it reads
the body.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ._render import error_body


@dataclass(frozen=True)
class Limits:
    """What the server accepts of one request."""

    max_body: int = 1 << 20
    """Bytes of a request body (413 beyond)."""
    max_head: int = 16 << 10
    """Bytes of the request line and headers (431 beyond), as in h11 and Node."""
    request_timeout: float = 30.0
    """Seconds for a request's head, and then for its body, to arrive (408 beyond)."""

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Limits:
        """The defaults, with `request_timeout` taken from the server settings if given."""
        timeout = settings.get("request_timeout")
        return cls(request_timeout=float(timeout)) if timeout else cls()


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bounded request head, answered in the error shape."""

    limits: ClassVar[Limits] = Limits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0
        self._tail = b""  # the last bytes of the head so far: its end may span two reads
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:  # the answer is out; read and drop the rest until the client closes
            return
        if self._in_head:  # count the bytes up to the blank line that ends the head
            if self._head_timer is None:
                self._arm_head_timer()
            window = self._tail + data
            end = window.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else max(0, end + 4 - len(self._tail))
            self._tail = window[-3:]
            if self._head_bytes > self.limits.max_head:
                self._refuse(
                    431, f"request line and headers larger than {self.limits.max_head} bytes"
                )
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes, self._tail = True, 0, b""

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request httptools cannot parse, in the error shape."""
        self._refuse(400, f"malformed HTTP request: {msg}")

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.limits.request_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            timeout = self.limits.request_timeout
            self._refuse(408, f"the request line and headers did not arrive within {timeout:g} s")

    def _refuse(self, status: int, message: str) -> None:
        """Answer `status` in the JSON error shape and close the connection.

        A lingering close, as nginx does: the answer and a FIN go out, what the client still
        sends is read and dropped until it closes (or `request_timeout` passes). Closing at
        once would make the kernel reset the connection over the unread bytes, and the
        client could lose the answer.
        """
        self._cancel_head_timer()
        self._in_head = False
        if self.transport.is_closing() or self._refused:
            return
        self._refused = True
        body = error_body(status, message)
        head = (
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
            "content-type: application/json\r\n"
            f"content-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        )
        self.transport.write(head.encode("ascii") + body)
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self.loop.call_later(self.limits.request_timeout, self.transport.close)


def protocol_class(limits: Limits) -> type[BoundedHttpToolsProtocol]:
    """The protocol class uvicorn instantiates per connection, bound to these limits."""
    return type("ScaimindHttpProtocol", (BoundedHttpToolsProtocol,), {"limits": limits})


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one).

    proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on such sockets; without it, Nagle and
    delayed ACKs hold every response for ~40 ms.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock
