"""`LocalCoordinator`: the whole server on a free loopback port, in a background thread."""

from __future__ import annotations

import os
import secrets
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from scaimind_nb._contract import API_PREFIX, Field, Route, Status

from ._drive import Drive
from ._registry import Registry
from ._service import Service
from ._store import Store

if TYPE_CHECKING:
    import uvicorn


class ApiCallError(RuntimeError):
    """A call to a coordinator failed: `HTTP 404: job 'x' not found` (never the key)."""


def call(host: str, api_key: str, method: str, path: str, body: Any = None) -> dict[str, Any]:
    """One authenticated JSON request (the CLI and LocalCoordinator use it), with httpx.

    Raises ApiCallError with a one-line message: the server's error message for an HTTP
    error, else what went wrong on the way.
    """
    import httpx

    headers = {"Authorization": f"Bearer {api_key}"}
    try:
        response = httpx.request(
            method, host.rstrip("/") + path, json=body, headers=headers, timeout=30
        )
    except httpx.TransportError as exc:
        reason = str(exc) or type(exc).__name__
        raise ApiCallError(f"cannot reach {host}: {reason}") from None
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if response.is_error:
        try:
            message = payload["error"]["message"]
        except (TypeError, KeyError):
            message = response.reason_phrase
        raise ApiCallError(f"HTTP {response.status_code}: {message}") from None
    if not isinstance(payload, dict):
        raise ApiCallError(f"{host} answered {method} {path} with something other than JSON")
    return payload


def build_server(
    db_path: str | Path,
    drive_root: str | Path,
    api_key: str,
    workers: int,
    settings: dict[str, Any] | None,
    plugins: Sequence[object] = (),
    *,
    log_level: str = "warning",
) -> uvicorn.Server:
    """The whole coordinator as a uvicorn server (shared by `serve` and LocalCoordinator):
    a store at `db_path`, a drive at `drive_root`, the app, and the request limits."""
    import uvicorn

    from ._app import create_app
    from ._http import Limits, protocol_class

    settings = dict(settings or {})
    mmlu_data = settings.get("mmlu_data") or os.environ.get("SCAIMIND_MMLU_DATA")
    drive = Drive(
        drive_root,
        allow_local_paths=bool(settings.get("allow_local_paths")),
        private={"db": Path(db_path).absolute().parent, "mmlu_data": mmlu_data},
    )
    store = Store(db_path, hide=drive.hide_all)
    service = Service(store, drive, workers=workers, settings=settings, registry=Registry(plugins))
    limits = Limits.from_settings(settings)
    app = create_app(service, api_key, limits)
    config = uvicorn.Config(
        app, log_level=log_level, access_log=False, lifespan="on", http=protocol_class(limits)
    )
    return uvicorn.Server(config)


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
        from ._http import bind

        self._server = build_server(
            self.db_path, self.drive_root, self.api_key, self.workers, self.settings, self.plugins
        )
        sock = bind(self.host, self.port)
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
        """One authenticated JSON call (httpx); raises ApiCallError with the server's message."""
        return call(self.url, self.api_key, method, path, body)

    def register_job(
        self, job_id: str, model_uri: str, status: str = Status.COMPLETED
    ) -> dict[str, Any]:
        """Register (or update) a training job whose model can then be evaluated."""
        body = {Field.JOB_ID: job_id, Field.MODEL_URI: model_uri, Field.STATUS: status}
        data: dict[str, Any] = self.request("POST", API_PREFIX + Route.JOBS, body)["data"]
        return data
