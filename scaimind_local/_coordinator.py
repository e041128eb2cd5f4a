"""`LocalCoordinator`: the whole server on a free loopback port, in a background thread."""

from __future__ import annotations

import json
import secrets
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from scaimind_nb._contract import API_PREFIX, Route

from ._drive import Drive
from ._registry import Registry
from ._service import Service
from ._store import Store


class ApiCallError(RuntimeError):
    """A stdlib call to a coordinator failed: `HTTP 404: job 'x' not found` (never the key)."""


def call(host: str, api_key: str, method: str, path: str, body: Any = None) -> dict[str, Any]:
    """One authenticated JSON request with the stdlib (the CLI and LocalCoordinator use it)."""
    req = urllib.request.Request(
        host.rstrip("/") + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            result: dict[str, Any] = json.loads(resp.read())
            return result
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = exc.reason
        raise ApiCallError(f"HTTP {exc.code}: {message}") from None
    except urllib.error.URLError as exc:
        raise ApiCallError(f"cannot reach {host}: {exc.reason}") from None


def build_app(
    db_path: str | Path,
    drive_root: str | Path,
    api_key: str,
    workers: int,
    settings: dict[str, Any] | None,
    plugins: Sequence[object] = (),
) -> Any:
    """The ASGI app over a store at `db_path` and a drive at `drive_root` (shared with the CLI)."""
    from ._app import create_app

    settings = dict(settings or {})
    drive = Drive(drive_root, allow_local_paths=bool(settings.get("allow_local_paths")))
    service = Service(
        Store(db_path), drive, workers=workers, settings=settings, registry=Registry(plugins)
    )
    return create_app(service, api_key)


class LocalCoordinator:
    """A context manager serving the ScaiMind API locally: `.url`, `.api_key`, `.register_job`.

    `allow_unisolated_code=True` lets humaneval run model-written code where kernel isolation is
    unavailable (the records then say so); without it such submits are refused with a 400.
    """

    def __init__(
        self,
        db_path: str | Path | None = None,
        drive_root: str | Path | None = None,
        api_key: str | None = None,
        workers: int = 1,
        *,
        settings: dict[str, Any] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        plugins: Sequence[object] = (),
        allow_unisolated_code: bool = False,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if db_path is None or drive_root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="scaimind-local-")
        base = Path(self._tmp.name) if self._tmp else Path()
        self.db_path = Path(db_path) if db_path is not None else base / "scaimind.sqlite"
        self.drive_root = Path(drive_root) if drive_root is not None else base / "drive"
        self.drive_root.mkdir(parents=True, exist_ok=True)
        self.api_key = api_key or secrets.token_urlsafe(24)
        self.workers = workers
        self.settings = dict(settings or {})
        if allow_unisolated_code:
            self.settings["allow_unisolated_code"] = True
        self.host, self.port = host, port
        self.plugins = plugins
        self.url = ""
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"LocalCoordinator(url={self.url!r}, db_path={str(self.db_path)!r})"

    def start(self) -> LocalCoordinator:
        """Bind, serve in a daemon thread and wait until the app (and its workers) is up."""
        import uvicorn

        app = build_app(
            self.db_path, self.drive_root, self.api_key, self.workers, self.settings, self.plugins
        )
        # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on such sockets; without it, Nagle
        # and delayed ACKs hold every response for ~40 ms
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name="scaimind-local"
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise RuntimeError("scaimind_local failed to start; see the log above")
            time.sleep(0.01)
        port = sock.getsockname()[1]
        self.url = f"http://{self.host}:{port}"
        return self

    def stop(self) -> None:
        """Stop serving and the workers; the SQLite file stays."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(30)
            self._server = self._thread = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> LocalCoordinator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def env(self) -> dict[str, str]:
        """`SCAIGRID_HOST`/`SCAIGRID_API_KEY` pointing at this server (for subprocesses)."""
        return {"SCAIGRID_HOST": self.url, "SCAIGRID_API_KEY": self.api_key}

    def request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """One authenticated JSON call; raises ApiCallError with the server's message."""
        return call(self.url, self.api_key, method, path, body)

    def register_job(
        self, job_id: str, model_uri: str, status: str = "COMPLETED"
    ) -> dict[str, Any]:
        """Register (or update) a training job whose model can then be evaluated."""
        body = {"job_id": job_id, "model_uri": model_uri, "status": status}
        data: dict[str, Any] = self.request("POST", API_PREFIX + Route.JOBS, body)["data"]
        return data
