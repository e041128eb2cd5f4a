"""The Starlette app: routes, envelopes, errors, auth and the protobuf-style rendering."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from scaimind_nb._contract import (
    API_PREFIX,
    JOB_FIELDS,
    PRECHECK_FIELDS,
    SERVED_STATUSES,
    SPEC_FIELDS,
    SUBMIT_FIELDS,
    ErrorCode,
    Field,
    Route,
    Status,
)

from ._benchmarks.base import BenchmarkSpec, InvalidBenchmark
from ._openapi import openapi
from ._service import Service
from ._store import KeyInUse, dump_json, render_spec

MAX_BODY = 1 << 20
MAX_BENCHMARKS = 100
PUBLIC_PATHS = ("/healthz",)
_KEY_PATTERN = re.compile(r"[!-~]{1,255}")


class ApiError(Exception):
    """An error answered as `{"error": {"code", "message"}}` with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dump_json(content)


def _record(
    rendered: bytes, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """An evaluation's stored rendering in the `{"data": …}` envelope, with no decode/encode."""
    return Response(b'{"data":' + rendered + b"}", status, headers, "application/json")


def _data(payload: Any, status: int = 200) -> JSON:
    return JSON({"data": payload}, status_code=status)


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSON:
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    code = ErrorCode.for_status(status)
    return JSON({"error": {"code": code, "message": message}}, status, headers=headers)


# rendering


def render_listed(row: dict[str, Any]) -> dict[str, Any]:
    """A listing item: the evaluation's own job record, as ScaiGrid's ListJobs returns it."""
    return {
        "job_id": row["id"],
        "name": f"evaluation of {row['job_id']}",
        "type": "evaluation",
        "labels": {"type": "evaluation", "parent_job_id": row["job_id"]},
        "status": row["status"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def _token(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def _untoken(token: str, types: tuple[type, type]) -> tuple[Any, Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if (
            isinstance(key, list)
            and len(key) == 2
            and all(
                isinstance(v, t) and not isinstance(v, bool)
                for v, t in zip(key, types, strict=True)
            )
        ):
            return key[0], key[1]
    except (ValueError, binascii.Error, UnicodeDecodeError):
        pass
    raise ApiError(400, "page_token is not a token this server issued: pass next_page_token as is")


def _page_size(request: Request) -> int:
    raw = request.query_params.get("page_size", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= 100:
        raise ApiError(400, f"page_size must be an integer from 1 to 100, got {raw!r}")
    return int(raw)


async def _body(request: Request) -> dict[str, Any]:
    """The JSON object body, refusing more than MAX_BODY bytes before reading them all."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise ApiError(413, f"request body larger than {MAX_BODY} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(413, f"request body larger than {MAX_BODY} bytes")
        chunks.append(chunk)
    try:
        body = json.loads(b"".join(chunks))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(422, f"request body must be a JSON object, got {type(body).__name__}")
    return body


def _string(body: dict[str, Any], key: str, *, required: bool = False) -> str:
    value = body.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ApiError(400, f"{key} must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise ApiError(400, f"{key} is required")
    return value


def _unknown(body: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    extra = sorted(set(body) - set(known))
    if extra:
        raise ApiError(
            400, f"unknown field(s) {', '.join(extra)} in {where}; known: {', '.join(known)}"
        )


def _spec_items(body: dict[str, Any]) -> list[Any]:
    """The body's `benchmarks` list: not empty, at most MAX_BENCHMARKS entries."""
    items = body.get(Field.BENCHMARKS)
    if not isinstance(items, list) or not items:
        raise ApiError(400, 'benchmarks must be a non-empty list, e.g. [{"name": "mmlu"}]')
    if len(items) > MAX_BENCHMARKS:
        raise ApiError(400, f"at most {MAX_BENCHMARKS} benchmarks per evaluation, got {len(items)}")
    return items


def parse_spec(item: Any, i: int) -> BenchmarkSpec:
    """One benchmark entry: a name or `{name, dataset?, num_samples?, parameters?}`."""
    where = f"benchmarks[{i}]"
    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, dict):
        raise ApiError(400, f"{where} must be a benchmark name or an object with a name")
    _unknown(item, SPEC_FIELDS, where)
    name = item.get(Field.NAME)
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, f"{where}.name is required (e.g. mmlu, humaneval, custom-mydata)")
    dataset = item.get(Field.DATASET)
    dataset = None if dataset == "" else dataset
    if dataset is not None and not isinstance(dataset, str):
        raise ApiError(400, f"{where}.dataset must be a string URI such as scaidrive://org/x.jsonl")
    n = item.get(Field.NUM_SAMPLES)
    if isinstance(n, str) and n.strip().lstrip("-").isdigit():
        n = int(n)
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        raise ApiError(
            400, f"{where}.num_samples must be an integer >= 1 (or omitted for all), got {n!r}"
        )
    params = item.get(Field.PARAMETERS)
    params = {} if params is None else params
    if not isinstance(params, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in params.items()
    ):
        raise ApiError(
            400, f'{where}.parameters must map strings to strings, e.g. {{"temperature": "0"}}'
        )
    return BenchmarkSpec(name=name, dataset=dataset, num_samples=n or None, parameters=params)


# routes


def _idempotency_key(request: Request) -> str | None:
    """The submit's `Idempotency-Key` header, if sent: 1-255 visible ASCII characters."""
    key = request.headers.get("idempotency-key")
    if key is not None and not _KEY_PATTERN.fullmatch(key):
        raise ApiError(
            400,
            "Idempotency-Key must be 1 to 255 visible ASCII characters (e.g. a UUID); "
            "send a new one per submission, the same one when retrying it",
        )
    return key


def _fingerprint(body: dict[str, Any]) -> str:
    """A digest of the parsed body: a retry with the same JSON matches whatever its key order."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(service: Service, key: str, fingerprint: str) -> Response | None:
    """The first answer's evaluation (now) for a key seen before; 422 if the body differs."""
    seen = service.store.idempotent_submit(key)
    if seen is None:
        return None
    first_fingerprint, eval_id, status = seen
    if first_fingerprint != fingerprint:
        raise ApiError(
            422,
            f"Idempotency-Key {key!r} was already used for evaluation {eval_id} with a different "
            "request body; use a new key for a new submission",
        )
    rendered = service.store.get_rendered(eval_id)
    assert rendered is not None  # evaluations are never deleted
    return _record(rendered, status, {"Idempotency-Key": key, "Idempotent-Replayed": "true"})


async def submit(request: Request) -> Response:
    service: Service = request.app.state.service
    key = _idempotency_key(request)
    body = await _body(request)
    idempotency = (key, _fingerprint(body)) if key is not None else None
    if idempotency is not None and (replayed := _replay(service, *idempotency)) is not None:
        return replayed
    _unknown(body, SUBMIT_FIELDS, "the request body")
    job_id = _string(body, Field.JOB_ID, required=True)
    model_uri = _string(body, Field.MODEL_URI)
    checkpoint_id = _string(body, Field.CHECKPOINT_ID)
    specs = [parse_spec(item, i) for i, item in enumerate(_spec_items(body))]
    job = service.store.get_job(job_id)
    if job is None:
        raise ApiError(
            404, f"job {job_id!r} not found: register it first (POST {API_PREFIX}{Route.JOBS})"
        )
    if job["status"] != Status.COMPLETED:
        raise ApiError(
            409, f"job {job_id!r} is {job['status']}; only a COMPLETED job can be evaluated"
        )
    try:  # reading and hashing the data is file work: off the event loop
        row = await run_in_threadpool(
            service.submit, job_id, model_uri or job["model_uri"], checkpoint_id, specs, idempotency
        )
    except InvalidBenchmark as exc:
        raise ApiError(400, str(exc)) from None
    except KeyInUse:  # another process on this database recorded the key first
        assert idempotency is not None
        replayed = _replay(service, *idempotency)
        assert replayed is not None
        return replayed
    headers = {"Idempotency-Key": key} if key is not None else None
    return _record(row["rendered"], headers=headers)


async def evaluations(request: Request) -> Response:
    """One route for both methods, so a 405 on it lists both in its Allow header."""
    return await (submit if request.method == "POST" else list_evaluations)(request)


def _evaluation(request: Request) -> dict[str, Any]:
    eval_id = request.path_params["evaluation_id"]
    row = request.app.state.service.store.get_evaluation(eval_id)
    if row is None:
        raise ApiError(404, f"evaluation {eval_id!r} not found")
    return row


async def get_evaluation(request: Request) -> Response:
    eval_id = request.path_params["evaluation_id"]
    rendered = request.app.state.service.store.get_rendered(eval_id)
    if rendered is None:
        raise ApiError(404, f"evaluation {eval_id!r} not found")
    return _record(rendered)


async def list_evaluations(request: Request) -> JSON:
    size = _page_size(request)
    token = request.query_params.get("page_token", "")
    after = _untoken(token, (str, str)) if token else None
    rows, more, total = request.app.state.service.store.list_evaluations(size, after)
    next_token = _token([rows[-1]["created_at"], rows[-1]["id"]]) if more else ""
    return _data(
        {
            "evaluations": [render_listed(r) for r in rows],
            "next_page_token": next_token,
            "total_count": str(total),
        }
    )


async def cancel_evaluation(request: Request) -> Response:
    row = _evaluation(request)
    if Status(row["status"]).is_terminal:
        raise ApiError(409, f"evaluation {row['id']} is already {row['status']}; nothing to cancel")
    row = request.app.state.service.store.request_cancel(row["id"])
    return _record(row["rendered"])


async def list_samples(request: Request) -> JSON:
    row = _evaluation(request)
    size = _page_size(request)
    token = request.query_params.get("page_token", "")
    after = _untoken(token, (int, int)) if token else None
    benchmark = request.query_params.get("benchmark") or None
    items, more = request.app.state.service.store.list_samples(row["id"], benchmark, size, after)
    next_token = _token([items[-1]["spec_index"], items[-1]["index"]]) if more else ""
    return _data({"samples": items, "next_page_token": next_token})


def _render_job(job: dict[str, Any]) -> dict[str, Any]:
    return {k: job[k] for k in ("job_id", "model_uri", "status", "created_at", "updated_at")}


async def put_job(request: Request) -> JSON:
    body = await _body(request)
    _unknown(body, JOB_FIELDS, "the request body")
    job_id = _string(body, Field.JOB_ID, required=True)
    model_uri = _string(body, Field.MODEL_URI, required=True)
    status = (_string(body, Field.STATUS) or Status.COMPLETED).upper()
    if status not in SERVED_STATUSES:
        raise ApiError(400, f"status {status!r} is not one of {', '.join(SERVED_STATUSES)}")
    job = request.app.state.service.store.put_job(job_id, model_uri, status)
    return _data(_render_job(job))


async def get_job(request: Request) -> JSON:
    job_id = request.path_params["job_id"]
    job = request.app.state.service.store.get_job(job_id)
    if job is None:
        raise ApiError(404, f"job {job_id!r} not found")
    return _data(_render_job(job))


async def list_benchmarks(request: Request) -> JSON:
    return _data({"benchmarks": request.app.state.service.registry.names()})


# precheck


async def precheck(request: Request) -> JSON:
    """What submitting these specs would score, queuing nothing: per spec its data's digest,
    record count or first problem, and the model's digest or problem (200 even with problems).

    A body the submit would refuse as malformed (a spec without a name, an unknown field) is a
    400 here too; what the runners, the drive and the model say is each spec's own answer."""
    body = await _body(request)
    _unknown(body, PRECHECK_FIELDS, "the request body")
    model_uri = _string(body, Field.MODEL_URI)
    specs = [parse_spec(item, i) for i, item in enumerate(_spec_items(body))]
    service: Service = request.app.state.service
    return _data(await run_in_threadpool(precheck_answer, service, model_uri, specs))


def precheck_answer(service: Service, model_uri: str, specs: list[BenchmarkSpec]) -> dict[str, Any]:
    """The precheck's answer: specs rendered as in a record, each with `data` or `problem`."""
    ctx = service.context("")
    entries: list[dict[str, Any]] = []
    for spec in specs:
        info, problem = service.check(service.describe, spec, ctx)
        entry = render_spec({**asdict(spec), Field.DATA: asdict(info) if info else None})
        entries.append({**entry, **({Field.PROBLEM: problem} if problem else {})})
    answer: dict[str, Any] = {Field.BENCHMARKS: entries}
    if model_uri:
        digest, problem = service.check(service.model_digest, model_uri)
        answer[Field.MODEL_URI] = model_uri
        answer[Field.MODEL_DIGEST if digest else Field.MODEL_PROBLEM] = digest or problem
    return answer


async def healthz(request: Request) -> JSON:
    return _data({"status": "ok"})


async def openapi_json(request: Request) -> JSON:
    return JSON(openapi())


class BearerAuth:
    """Pure ASGI middleware: every path but PUBLIC_PATHS needs `Authorization: Bearer <key>`."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self.expected = f"Bearer {api_key}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in PUBLIC_PATHS:
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                message = "missing or invalid API key: send Authorization: Bearer $SCAIGRID_API_KEY"
                await error_response(401, message)(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = "no such route" if exc.status_code == 404 else str(exc.detail)
    return error_response(exc.status_code, message, exc.headers)  # 405 keeps its Allow header


async def _internal(request: Request, exc: Exception) -> Response:
    return error_response(500, "internal error; see the coordinator's log")


def _route(route: Route, endpoint: Any, *methods: str) -> StarletteRoute:
    return StarletteRoute(API_PREFIX + route, endpoint, methods=list(methods))


def create_app(service: Service, api_key: str) -> ASGIApp:
    """The coordinator as an ASGI app; its lifespan starts and stops the workers."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.stop()

    routes = [
        _route(Route.EVALUATIONS, evaluations, "GET", "POST"),
        _route(Route.EVALUATION, get_evaluation, "GET"),
        _route(Route.CANCEL, cancel_evaluation, "POST"),
        _route(Route.SAMPLES, list_samples, "GET"),
        _route(Route.JOBS, put_job, "POST"),
        _route(Route.JOB, get_job, "GET"),
        _route(Route.BENCHMARKS, list_benchmarks, "GET"),
        _route(Route.PRECHECK, precheck, "POST"),
        StarletteRoute("/healthz", healthz, methods=["GET"]),
        StarletteRoute("/openapi.json", openapi_json, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _internal},
    )
    app.state.service = service
    return BearerAuth(app, api_key)
