"""The Starlette app: the route table, request parsing, bearer auth and the error shape.

Every route is one row of `ENDPOINTS`; the routes, the OpenAPI description and the
authentication's public paths are all derived from it, so a new route joins in one line.
Handlers are functions of a `Call` (the service, the path parameters, the parameters their
row declares, the parsed body). As in Starlette, a plain `def` handler runs in the thread
pool, so file and SQLite work never holds the event loop; an `async def` handler runs on the
loop and must not block: `/healthz`, `/openapi.json`, and GET of a record, which awaits its
read from `RecordReader`'s thread.
Any request gets a 2xx, or a 4xx as `{"error": {"code", "message"}}`: malformed input is
refused where it is parsed, with a message that says what is wrong.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import hashlib
import hmac
import inspect
import json
import queue
import re
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
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
    Field,
    Route,
    Status,
)

from ._benchmarks.base import BenchmarkSpec
from ._errors import (
    ApiError,
    BadRequest,
    FailedPrecondition,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
    UnprocessableEntity,
    shown,
)
from ._http import Limits
from ._json import load_json
from ._openapi import (
    BENCHMARK,
    IDEMPOTENCY_HEADERS,
    IDEMPOTENCY_KEY,
    PAGE_SIZE,
    PAGE_TOKEN,
    Endpoint,
    openapi,
)
from ._render import (
    dump_json,
    envelope,
    error_body,
    render_evaluation_page,
    render_job,
    render_sample_page,
    render_spec,
)
from ._service import Service
from ._store import KeyInUse, Store

MAX_BENCHMARKS = 100
MAX_DEPTH = 32
"""Deepest nesting of arrays and objects in a request body or a page token."""
MAX_INT64 = (1 << 63) - 1
_KEY_PATTERN = re.compile(r"[!-~]{1,255}")
_INTEGER = re.compile(r"-?[0-9]{1,19}")  # ASCII digits only: str.isdigit() accepts "²"


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dump_json(content)


def _data(payload: Any) -> JSON:
    return JSON({Field.DATA: payload})


def _record(rendered: bytes, headers: Mapping[str, str] | None = None) -> Response:
    """An evaluation's stored rendering in its envelope, with no decode/encode."""
    return Response(envelope(rendered), 200, headers, "application/json")


def error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """The error shape; a 401 names the scheme it wants (RFC 7235)."""
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return Response(error_body(status, message), status, headers, "application/json")


# parsing


def parse_json(raw: bytes | str, what: str) -> Any:
    """JSON of a request: at most MAX_DEPTH levels deep, every string valid Unicode."""
    return load_json(raw, what, max_depth=MAX_DEPTH)


def parse_int(value: Any, what: str, low: int, high: int = MAX_INT64, hint: str = "") -> int:
    """An integer from JSON (a number, or a string of ASCII digits as int64 values are sent)."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        number = int(value.strip())
    if number is None or not low <= number <= high:
        bound = f"from {low} to {high}" if high < MAX_INT64 else f">= {low} (and < 2^63)"
        raise BadRequest(f"{what} must be an integer {bound}{hint}, got {shown(value, 40)}")
    return number


def _untoken(token: str, types: tuple[type, type]) -> tuple[Any, Any]:
    """The keyset position in a `page_token` (`_render.page_token` writes them)."""
    try:
        key = parse_json(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)), "page_token")
    except (BadRequest, binascii.Error, ValueError):
        key = None
    if (
        isinstance(key, list)
        and len(key) == 2
        and all(
            isinstance(v, t) and not isinstance(v, bool) for v, t in zip(key, types, strict=True)
        )
        and all(0 <= v <= MAX_INT64 for v in key if isinstance(v, int))
    ):
        return key[0], key[1]
    raise BadRequest("page_token is not a token this server issued: pass next_page_token as is")


def _string(body: dict[str, Any], key: str, *, required: bool = False) -> str:
    value = body.get(key, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string, got {type(value).__name__}")
    if required and not value.strip():
        raise BadRequest(f"{key} is required")
    return value


def _unknown(body: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    extra = sorted(set(body) - set(known))
    if extra:
        names = ", ".join(shown(k, 40) for k in extra[:5])
        raise BadRequest(f"unknown field(s) {names} in {where}; known: {', '.join(known)}")


def _spec_items(body: dict[str, Any]) -> list[Any]:
    """The body's `benchmarks` list: not empty, at most MAX_BENCHMARKS entries."""
    items = body.get(Field.BENCHMARKS)
    if not isinstance(items, list) or not items:
        raise BadRequest('benchmarks must be a non-empty list, e.g. [{"name": "mmlu"}]')
    if len(items) > MAX_BENCHMARKS:
        raise BadRequest(f"at most {MAX_BENCHMARKS} benchmarks per evaluation, got {len(items)}")
    return items


def parse_spec(item: Any, i: int) -> BenchmarkSpec:
    """One benchmark entry: a name or `{name, dataset?, num_samples?, parameters?}`."""
    where = f"benchmarks[{i}]"
    if isinstance(item, str):
        item = {Field.NAME: item}
    if not isinstance(item, dict):
        raise BadRequest(f"{where} must be a benchmark name or an object with a name")
    _unknown(item, SPEC_FIELDS, where)
    name = item.get(Field.NAME)
    if not isinstance(name, str) or not name.strip():
        raise BadRequest(f"{where}.name is required (e.g. mmlu, humaneval, custom-mydata)")
    dataset = item.get(Field.DATASET)
    dataset = None if dataset == "" else dataset
    if dataset is not None and not isinstance(dataset, str):
        raise BadRequest(f"{where}.dataset must be a string URI such as scaidrive://org/x.jsonl")
    n = item.get(Field.NUM_SAMPLES)
    num_samples = (
        None if n is None else parse_int(n, f"{where}.num_samples", 1, hint=" (or omitted for all)")
    )
    params = item.get(Field.PARAMETERS)
    params = {} if params is None else params
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
        raise BadRequest(
            f'{where}.parameters must map strings to strings, e.g. {{"temperature": "0"}}'
        )
    return BenchmarkSpec(name=name, dataset=dataset, num_samples=num_samples, parameters=params)


# handlers


@dataclass(frozen=True)
class Call:
    """What a handler gets: never the request itself, so it reads only what its row declares."""

    service: Service
    path: Mapping[str, str]
    params: Mapping[str, str]
    """The declared query and header parameters that were sent (headers by declared name)."""
    body: dict[str, Any] | None
    """The parsed JSON object body, for endpoints that declare one."""
    reader: RecordReader

    def page_size(self) -> int:
        return parse_int(self.params.get(PAGE_SIZE.name, "20"), "page_size", 1, 100)


def _idempotency_key(call: Call) -> str | None:
    """The submit's `Idempotency-Key` header, if sent: 1-255 visible ASCII characters."""
    key = call.params.get(IDEMPOTENCY_KEY.name)
    if key is not None and not _KEY_PATTERN.fullmatch(key):
        raise BadRequest(
            "Idempotency-Key must be 1 to 255 visible ASCII characters (e.g. a UUID); "
            "send a new one per submission, the same one when retrying it"
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
    first_fingerprint, eval_id, _status = seen
    if first_fingerprint != fingerprint:
        raise UnprocessableEntity(
            f"Idempotency-Key {shown(key)} was already used for evaluation {eval_id} with a different "
            "request body; use a new key for a new submission"
        )
    rendered = service.store.get_rendered(eval_id)
    assert rendered is not None  # evaluations are never deleted
    return _record(rendered, {"Idempotency-Key": key, "Idempotent-Replayed": "true"})


def submit(call: Call) -> Response:
    """Validate and queue an evaluation (the runners' checks read files: never on the loop)."""
    service, body = call.service, call.body
    assert body is not None
    key = _idempotency_key(call)
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
        raise NotFound(
            f"job {shown(job_id)} not found: register it first (POST {API_PREFIX}{Route.JOBS})"
        )
    if job["status"] != Status.COMPLETED:
        raise FailedPrecondition(
            f"job {shown(job_id)} is {job['status']}; only a COMPLETED job can be evaluated"
        )
    try:
        row = service.submit(
            job_id, model_uri or job["model_uri"], checkpoint_id, specs, idempotency
        )
    except KeyInUse:  # another process on this database recorded the key first
        assert idempotency is not None
        replayed = _replay(service, *idempotency)
        assert replayed is not None
        return replayed
    return _record(row["rendered"], {"Idempotency-Key": key} if key is not None else None)


async def get_evaluation(call: Call) -> Response:
    """The stored rendering, read off the loop by the reader's thread (GET's fast path)."""
    eval_id = call.path["evaluation_id"]
    rendered = await call.reader.rendered(eval_id)
    if rendered is None:
        raise NotFound(f"evaluation {shown(eval_id)} not found")
    return _record(rendered)


def list_evaluations(call: Call) -> JSON:
    size = call.page_size()
    token = call.params.get(PAGE_TOKEN.name, "")
    after = _untoken(token, (str, str)) if token else None
    rows, more, total = call.service.store.list_evaluations(size, after)
    return _data(render_evaluation_page(rows, more, total))


def cancel_evaluation(call: Call) -> Response:
    eval_id = call.path["evaluation_id"]
    row = call.service.store.get_evaluation(eval_id)
    if row is None:
        raise NotFound(f"evaluation {shown(eval_id)} not found")
    if Status(row["status"]).is_terminal:
        raise FailedPrecondition(
            f"evaluation {row['id']} is already {row['status']}; nothing to cancel"
        )
    cancelled = call.service.store.request_cancel(row["id"])
    assert cancelled is not None
    return _record(cancelled["rendered"])


def list_samples(call: Call) -> JSON:
    eval_id = call.path["evaluation_id"]
    if call.service.store.get_rendered(eval_id) is None:
        raise NotFound(f"evaluation {shown(eval_id)} not found")
    size = call.page_size()
    token = call.params.get(PAGE_TOKEN.name, "")
    after = _untoken(token, (int, int)) if token else None
    benchmark = call.params.get(BENCHMARK.name) or None
    rows, more = call.service.store.list_samples(eval_id, benchmark, size, after)
    return _data(render_sample_page(rows, more))


def put_job(call: Call) -> JSON:
    body = call.body
    assert body is not None
    _unknown(body, JOB_FIELDS, "the request body")
    job_id = _string(body, Field.JOB_ID, required=True)
    model_uri = _string(body, Field.MODEL_URI, required=True)
    status = (_string(body, Field.STATUS) or Status.COMPLETED).upper()
    if status not in SERVED_STATUSES:
        raise BadRequest(f"status {shown(status, 40)} is not one of {', '.join(SERVED_STATUSES)}")
    return _data(render_job(call.service.store.put_job(job_id, model_uri, status)))


def get_job(call: Call) -> JSON:
    job_id = call.path["job_id"]
    job = call.service.store.get_job(job_id)
    if job is None:
        raise NotFound(f"job {shown(job_id)} not found")
    return _data(render_job(job))


def list_benchmarks(call: Call) -> JSON:
    return _data({Field.BENCHMARKS: call.service.registry.names()})


# precheck


def precheck(call: Call) -> JSON:
    """What submitting these specs would score, queuing nothing: per spec its data's digest,
    record count or first problem, and the model's digest or problem (200 even with problems).

    A body the submit would refuse as malformed (a spec without a name, an unknown field) is a
    400 here too; what the runners, the drive and the model say is each spec's own answer."""
    body = call.body
    assert body is not None
    _unknown(body, PRECHECK_FIELDS, "the request body")
    model_uri = _string(body, Field.MODEL_URI)
    specs = [parse_spec(item, i) for i, item in enumerate(_spec_items(body))]
    return _data(precheck_answer(call.service, model_uri, specs))


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


async def healthz(call: Call) -> JSON:
    return _data({Field.STATUS: "ok"})


async def openapi_json(call: Call) -> Response:
    return Response(_openapi_bytes(), 200, media_type="application/json")


def _api(route: Route) -> str:
    return API_PREFIX + route


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "POST", _api(Route.EVALUATIONS), submit, "submitEvaluation",
        "Queue an evaluation of a COMPLETED job's model", "Evaluation", errors=(404, 409),
        params=(IDEMPOTENCY_KEY,), body="SubmitRequest", answer_headers=IDEMPOTENCY_HEADERS,
    ),
    Endpoint(
        "GET", _api(Route.EVALUATIONS), list_evaluations, "listEvaluations",
        "Evaluations newest first, as job records", "EvaluationPage",
        params=(PAGE_SIZE, PAGE_TOKEN),
    ),
    Endpoint(
        "GET", _api(Route.EVALUATION), get_evaluation, "getEvaluation",
        "The full record", "Evaluation", errors=(404,),
    ),
    Endpoint(
        "POST", _api(Route.CANCEL), cancel_evaluation, "cancelEvaluation",
        "Cancel a queued or running evaluation", "Evaluation", errors=(404, 409),
    ),
    Endpoint(
        "GET", _api(Route.SAMPLES), list_samples, "listSamples",
        "Per-sample records", "SamplePage", errors=(404,),
        params=(BENCHMARK, PAGE_SIZE, PAGE_TOKEN),
    ),
    Endpoint(
        "POST", _api(Route.JOBS), put_job, "putJob",
        "Register a job (or update its model and status)", "Job", body="JobRequest",
    ),
    Endpoint(
        "GET", _api(Route.JOB), get_job, "getJob", "A registered job", "Job", errors=(404,),
    ),
    Endpoint(
        "GET", _api(Route.BENCHMARKS), list_benchmarks, "listBenchmarks",
        "The benchmark names this coordinator runs", "Benchmarks",
    ),
    Endpoint(
        "POST", _api(Route.PRECHECK), precheck, "precheck",
        "Check a model and benchmark specs without queuing anything: per spec its data's digest "
        "or first problem, the model's digest or problem", "PrecheckAnswer", body="PrecheckRequest",
    ),
    Endpoint(
        "GET", "/healthz", healthz, "health", "The server is up", "Health", public=True,
    ),
    Endpoint("GET", "/openapi.json", openapi_json, "openapi", "This description", None),
)  # fmt: skip
"""The route table: every route, method and parameter the coordinator serves."""


@functools.cache
def _openapi_bytes() -> bytes:
    return dump_json(openapi(ENDPOINTS))


# dispatch


async def _read_body(request: Request, limits: Limits) -> bytes:
    """The body, refusing more than `limits.max_body` bytes and a body that stalls."""
    too_large = PayloadTooLarge(f"request body larger than {limits.max_body} bytes")
    length = request.headers.get("content-length", "")
    if _INTEGER.fullmatch(length) and int(length) > limits.max_body:
        raise too_large
    chunks, size = [], 0
    try:
        with anyio.fail_after(limits.request_timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limits.max_body:
                    raise too_large
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeout(
            f"the request body did not arrive within {limits.request_timeout:g} s",
            headers={"Connection": "close"},
        ) from None
    except ClientDisconnect:  # nobody is left to answer; end the request quietly
        raise BadRequest("the client disconnected before sending the body") from None
    return b"".join(chunks)


def _parse_body(raw: bytes) -> dict[str, Any]:
    body = parse_json(raw, "request body")
    if not isinstance(body, dict):
        raise UnprocessableEntity(f"request body must be a JSON object, got {type(body).__name__}")
    return body


def _call(endpoint: Endpoint, request: Request, raw: bytes | None) -> Call:
    """The handler's argument: only the parameters the endpoint declares, the parsed body."""
    params: dict[str, str] = {}
    for param in endpoint.params:
        source = request.query_params if param.where == "query" else request.headers
        value = source.get(param.name)
        if value is not None:
            params[param.name] = value
    body = _parse_body(raw) if raw is not None else None
    state = request.app.state
    return Call(state.service, request.path_params, params, body, state.reader)


def _run(endpoint: Endpoint, request: Request, raw: bytes | None) -> Response:
    response: Response = endpoint.handler(_call(endpoint, request, raw))
    return response


def _dispatcher(methods: Mapping[str, Endpoint]) -> Callable[[Request], Any]:
    """The Starlette endpoint of one path: reads the body on the loop, runs the handler."""
    on_loop = {m: inspect.iscoroutinefunction(e.handler) for m, e in methods.items()}

    async def dispatch(request: Request) -> Response:
        method = request.method if request.method in methods else "GET"  # HEAD: GET, no body
        endpoint = methods[method]
        limits: Limits = request.app.state.limits
        raw = await _read_body(request, limits) if endpoint.body is not None else None
        if on_loop[method]:
            response: Response = await endpoint.handler(_call(endpoint, request, raw))
            return response
        return await run_in_threadpool(_run, endpoint, request, raw)

    return dispatch


class RecordReader:
    """GET's reads of stored renderings: off the event loop, and many per thread wake-up.

    A thread-pool hop per GET costs more than the read itself (the worker waits for the GIL
    while the loop is busy), so GETs queue `(id, future)` and one thread reads every queued id
    in one SELECT, then resolves the batch's futures in one callback on the loop.
    """

    MAX_BATCH = 256

    def __init__(self, store: Store) -> None:
        self._store = store
        self._queue: queue.SimpleQueue[tuple[str, asyncio.Future[bytes | None]] | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, daemon=True, name="scaimind-reads")
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(10)
            self._thread = None

    async def rendered(self, eval_id: str) -> bytes | None:
        """The stored rendering of an evaluation, or None if there is no such evaluation."""
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._queue.put((eval_id, future))
        return await future

    def _serve(self) -> None:
        try:
            stopping = False
            while not stopping:
                item = self._queue.get()
                if item is None:
                    break
                batch = [item]
                while len(batch) < self.MAX_BATCH:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stopping = True
                        break
                    batch.append(more)
                self._answer(batch)
        finally:
            self._store.close()

    def _answer(self, batch: list[tuple[str, asyncio.Future[bytes | None]]]) -> None:
        try:
            found, error = self._store.get_rendered_many(list({i for i, _ in batch})), None
        except Exception as exc:  # answered as each request's 500, not lost in this thread
            found, error = {}, exc

        def resolve() -> None:
            for eval_id, future in batch:
                if future.done():  # the client went away
                    continue
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(found.get(eval_id))

        with contextlib.suppress(RuntimeError):  # a closed loop: the server is shutting down
            batch[0][1].get_loop().call_soon_threadsafe(resolve)


def routes(endpoints: Sequence[Endpoint]) -> list[StarletteRoute]:
    """One Starlette route per path, so a 405 lists all of the path's methods in Allow."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for endpoint in endpoints:
        by_path.setdefault(endpoint.path, {})[endpoint.method] = endpoint
    return [
        StarletteRoute(path, _dispatcher(methods), methods=list(methods))
        for path, methods in by_path.items()
    ]


class BearerAuth:
    """Pure ASGI middleware: every path but `public` needs `Authorization: Bearer <key>`.

    The scheme is matched case-insensitively (RFC 7235), the key in constant time.
    """

    def __init__(self, app: ASGIApp, api_key: str, public: Sequence[str]) -> None:
        self.app = app
        self.expected = api_key.encode()
        self.public = frozenset(public)

    def authorised(self, header: bytes) -> bool:
        scheme, _, credentials = header.strip(b" \t").partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(
            credentials.strip(b" \t"), self.expected
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in self.public:
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not self.authorised(given):
                message = "missing or invalid API key: send Authorization: Bearer $SCAIGRID_API_KEY"
                await error_response(401, message)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(
    service: Service,
    api_key: str,
    limits: Limits | None = None,
    endpoints: Sequence[Endpoint] = ENDPOINTS,
) -> ASGIApp:
    """The coordinator as an ASGI app; its lifespan starts and stops the workers."""

    reader = RecordReader(service.store)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        reader.start()
        service.start()
        try:
            yield
        finally:
            service.stop()
            reader.stop()

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, service.drive.hide(exc.message), exc.headers)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = "no such route" if exc.status_code == 404 else str(exc.detail)
        return error_response(exc.status_code, message, exc.headers)  # 405 keeps its Allow

    async def internal(request: Request, exc: Exception) -> Response:
        # Starlette re-raises the exception after this answer, and uvicorn logs it
        return error_response(500, "internal error; see the coordinator's log")

    app = Starlette(
        routes=routes(endpoints),
        lifespan=lifespan,
        exception_handlers={ApiError: api_error, HTTPException: http_error, Exception: internal},
    )
    app.state.service = service
    app.state.reader = reader
    app.state.limits = limits or Limits()
    return BearerAuth(app, api_key, [e.path for e in endpoints if e.public])
