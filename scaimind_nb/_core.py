"""The sans-I/O core shared by Client and AsyncClient.

Every operation (retrying request, submit with duplicate check, wait, find) is a generator
that yields I/O operations (``Send``, ``Sleep``, ``Notify``) and receives their results; the
sync and async clients only drive these generators, so the two cannot drift. Retry
decisions, backoff with jitter, Retry-After parsing, deadline budgets, page-token logic and
response decoding are plain functions and small classes here.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import math
import os
import random
import time
import uuid
import weakref
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from ._contract import API_PREFIX, Field, Route
from ._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    EvaluationFailedError,
    NotFoundError,
    PermissionDeniedError,
    PrecheckNotAvailableError,
    ProtocolError,
    RateLimitError,
    SamplesNotAvailableError,
    ScaimindError,
    ScaimindValueError,
    ServerError,
    UnprocessableEntityError,
    WaitTimeoutError,
)
from ._models import Benchmark, Evaluation, PollEvent, Status
from ._normalise import (
    error_message,
    parse_evaluation,
    parse_page,
    parse_precheck,
    parse_sample_page,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["DEFAULT", "Config", "Core"]

logger = logging.getLogger("scaimind_nb")

DEFAULT_TIMEOUT = (5.0, 30.0, 30.0, 30.0)  # connect, read, write, pool seconds
DEFAULT_CALL_DEADLINE = 120.0  # seconds per call, all retries included
DEFAULT_WAIT_TIMEOUT = 6 * 3600.0
BACKOFF_INITIAL = 0.5
BACKOFF_CAP = 8.0
SUBMIT_LOOKBACK = 300.0  # seconds before a submit that a duplicate check looks back (clock skew)
MAX_PAGES = 100_000
USER_AGENT = "scaimind-nb/0.1.0"


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()


class _Secret:
    """Holds the API key; its repr and str never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


class _RedactFilter(logging.Filter):
    """Masks one client's API key in records of the package logger (one filter per client)."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if self.secret in msg:
            record.msg, record.args = msg.replace(self.secret, "***"), None
        return True


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***``."""
    for s in secrets:
        if s and s in text:
            text = text.replace(s, "***")
    return text


# --- configuration ---------------------------------------------------------------------------


def _positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ScaimindValueError(f"{name} must be a number of seconds, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero) or math.isinf(value):
        raise ScaimindValueError(f"{name} must be a finite number of seconds > 0, got {value!r}")
    return float(value)


def _timeout_tuple(timeout: Any) -> tuple[float, float, float, float]:
    if timeout is DEFAULT:
        return DEFAULT_TIMEOUT
    if timeout is None:
        raise ScaimindValueError(
            "timeout=None would let a request hang forever; pass seconds (e.g. timeout=30) "
            "or leave it out for the default (5 s connect, 30 s read)"
        )
    if isinstance(timeout, int | float) and not isinstance(timeout, bool):
        t = _positive("timeout", timeout)
        return (min(5.0, t), t, t, t)
    parts = [getattr(timeout, a, None) for a in ("connect", "read", "write", "pool")]
    if any(p is None for p in parts):
        raise ScaimindValueError(
            "every part of an httpx.Timeout must be set (None would hang forever); "
            "e.g. httpx.Timeout(30.0, connect=5.0)"
        )
    c, r, w, p = (_positive("timeout", x) for x in parts)
    return (c, r, w, p)


@dataclass(frozen=True)
class Config:
    """Resolved client settings; built once per client."""

    host: str
    api_key: _Secret = field(repr=False)
    timeout: tuple[float, float, float, float] = DEFAULT_TIMEOUT
    max_retries: int = 2
    call_deadline: float = DEFAULT_CALL_DEADLINE
    poll_interval: float = 1.0
    max_poll_interval: float = 20.0
    wait_timeout: float = DEFAULT_WAIT_TIMEOUT

    @classmethod
    def resolve(
        cls,
        host: str | None,
        api_key: str | None,
        *,
        timeout: Any = DEFAULT,
        max_retries: int = 2,
        call_deadline: float = DEFAULT_CALL_DEADLINE,
        poll_interval: float = 1.0,
        max_poll_interval: float = 20.0,
        wait_timeout: float = DEFAULT_WAIT_TIMEOUT,
    ) -> Config:
        """Validate constructor arguments and fill host/key from SCAIGRID_HOST / SCAIGRID_API_KEY."""
        host = host if host is not None else os.environ.get("SCAIGRID_HOST")
        if not host:
            raise ScaimindValueError(
                "no coordinator host: pass host='https://…' or set SCAIGRID_HOST"
            )
        host = host.strip().rstrip("/")
        if not host.startswith(("http://", "https://")):
            raise ScaimindValueError(
                f"host must be an http(s) URL such as https://scaigrid.example.com, got {host!r}"
            )
        key = api_key if api_key is not None else os.environ.get("SCAIGRID_API_KEY")
        if not key:
            raise ScaimindValueError("no API key: pass api_key=... or set SCAIGRID_API_KEY")
        if not isinstance(key, str) or any(ch in key for ch in "\r\n"):
            raise ScaimindValueError("the API key must be a single-line string")
        if key in host:
            raise ScaimindValueError("the API key must not be part of the host URL; pass api_key=")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ScaimindValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        return cls(
            host=host,
            api_key=_Secret(key),
            timeout=_timeout_tuple(timeout),
            max_retries=max_retries,
            call_deadline=_positive("call_deadline", call_deadline),
            poll_interval=_positive("poll_interval", poll_interval, allow_zero=True),
            max_poll_interval=_positive("max_poll_interval", max_poll_interval, allow_zero=True),
            wait_timeout=_positive("wait_timeout", wait_timeout),
        )


# --- I/O operations the drivers perform ------------------------------------------------------


@dataclass
class Send:
    """Send one HTTP request; the driver answers with the ``httpx.Response`` or throws the error."""

    method: str
    url: str
    headers: dict[str, str]
    timeout: httpx.Timeout
    params: dict[str, Any] | None = None
    json: Any = None


@dataclass
class Sleep:
    """Sleep ``seconds`` (asyncio-friendly in the async driver)."""

    seconds: float


@dataclass
class Notify:
    """Call ``callback(value)``; the async driver awaits it if it returns an awaitable."""

    callback: Callable[[Any], Any]
    value: Any


Op = Send | Sleep | Notify
Gen = Generator[Op, Any, Any]


# --- retry decisions ---------------------------------------------------------------------------


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asks us to wait: ``retry-after-ms``, ``Retry-After`` seconds or HTTP date."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            v = float(ms) / 1000.0
            if v >= 0 and math.isfinite(v):
                return v
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        v = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, when.timestamp() - (time.time() if now is None else now))
    return v if v >= 0 and math.isfinite(v) else None


def backoff(
    retry: int, rng: random.Random, *, initial: float = BACKOFF_INITIAL, cap: float = BACKOFF_CAP
) -> float:
    """Capped exponential backoff with jitter in [0.75, 1.0] of the step: 0.5, 1, 2, 4, 8 s."""
    return min(initial * 2.0**retry, cap) * rng.uniform(0.75, 1.0)


RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


@dataclass
class Step:
    """What a request loop does next: retry after ``delay``, or finish with ``value`` / ``error``."""

    delay: float | None = None
    value: Any = None
    error: BaseException | None = None
    ambiguous: bool = False

    def unwrap(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


@dataclass(frozen=True)
class Spec:
    """A logical API call: method, path under the scaimind prefix, params, body."""

    method: str
    path: str
    params: dict[str, Any] | None = None
    json: Any = None
    idempotent: bool = True


class Attempts:
    """Retry state of one logical call: attempt count, deadline budget, request id."""

    def __init__(self, core: Core, spec: Spec, deadline: float | None) -> None:
        self.core = core
        self.spec = spec
        self.retries = 0
        budget = (
            core.config.call_deadline
            if deadline is None
            else min(deadline, core.config.call_deadline)
        )
        self.deadline = core.clock() + budget
        self.request_id = uuid.uuid4().hex
        self.url = core.config.host + API_PREFIX + spec.path

    def remaining(self) -> float:
        return self.deadline - self.core.clock()

    def send(self) -> Send:
        import httpx

        c, r, w, p = self.core.config.timeout
        rem = max(self.remaining(), 0.001)
        headers = {
            "Authorization": "Bearer " + self.core.config.api_key.reveal(),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            "X-Request-Id": self.request_id,
            "X-Scaimind-Retry-Count": str(self.retries),
        }
        if not self.spec.idempotent:
            headers["Idempotency-Key"] = self.request_id
        return Send(
            self.spec.method,
            self.url,
            headers,
            httpx.Timeout(
                connect=min(c, rem), read=min(r, rem), write=min(w, rem), pool=min(p, rem)
            ),
            self.spec.params,
            self.spec.json,
        )

    def _retry(self, hint: float | None) -> float | None:
        """Delay before the next attempt, or None when out of retries or budget."""
        if self.retries >= self.core.config.max_retries:
            return None
        delay = backoff(self.retries, self.core.rng) if hint is None else hint
        if delay >= self.remaining():
            return None  # a hint longer than the remaining budget is not waited out
        self.retries += 1
        return delay

    def on_exception(self, exc: Exception) -> Step:
        """Decide after a transport error (connection, timeout, reset)."""
        import httpx

        kind = type(exc).__name__
        what = f"{self.spec.method} {self.url}"
        if isinstance(exc, httpx.TimeoutException):
            error: ScaimindError = APITimeoutError(f"{what} timed out ({kind})")
        else:
            error = APIConnectionError(
                f"{what} failed: {kind}: {self.core.redact(str(exc)) or 'no detail'}"
            )
        error.__cause__ = exc
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
            return Step(error=error)  # a bad URL or a request httpx refuses: retrying cannot help
        # a request that never left this machine cannot have taken effect on the server
        not_sent = httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout | httpx.ProxyError
        ambiguous = not self.spec.idempotent and not isinstance(exc, not_sent)
        delay = self._retry(None)
        logger.info(
            "%s: %s (attempt %d)%s",
            what,
            kind,
            self.retries,
            "; retrying" if delay is not None else "",
        )
        return Step(delay=delay, error=error, ambiguous=ambiguous)

    def on_response(self, response: httpx.Response) -> Step:
        """Decide after a response: decode 2xx, retry 408/429/5xx, raise the rest."""
        status = response.status_code
        if not self.spec.idempotent and response.headers.get("idempotency-key") == self.request_id:
            self.core.honours_keys = True  # the server echoed our key: it deduplicates by it
        logger.debug("%s %s -> %d", self.spec.method, self.url, status)
        if 200 <= status < 300:
            try:
                return Step(value=self.core.decode(response.content, self.url))
            except ProtocolError as garbled:  # a broken proxy: the call may have taken effect
                delay = self._retry(None)
                return Step(delay=delay, error=garbled, ambiguous=not self.spec.idempotent)
        error = self.core.status_error(response, self.spec.method, self.url)
        if status not in RETRY_STATUSES:
            return Step(error=error)
        ambiguous = not self.spec.idempotent and status >= 500
        delay = self._retry(parse_retry_after(response.headers))
        logger.info(
            "%s %s -> %d (attempt %d)%s",
            self.spec.method,
            self.url,
            status,
            self.retries,
            "; retrying" if delay is not None else "",
        )
        return Step(delay=delay, error=error, ambiguous=ambiguous)


# --- pagination, polling, matching -----------------------------------------------------------


def check_page_size(page_size: int) -> int:
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= 1000:
        raise ScaimindValueError(f"page_size must be an integer from 1 to 1000, got {page_size!r}")
    return page_size


T = TypeVar("T")


class Pager:
    """Page-token logic: continue while the token is non-empty, stop at ``limit``, refuse repeats."""

    def __init__(
        self, page_size: int, limit: int | None = None, max_pages: int = MAX_PAGES
    ) -> None:
        self.page_size = check_page_size(page_size)
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise ScaimindValueError(f"limit must be an integer >= 0 or None, got {limit!r}")
        self.limit = limit
        self.max_pages = max_pages
        self.token: str | None = None
        self.more = limit != 0
        self.pages = 0
        self.count = 0
        self._seen: set[str] = set()

    def take(self, items: list[T], token: str | None) -> list[T]:
        """A page's ``items`` within the limit; ``token`` advances the walk or ends it."""
        self.pages += 1
        if self.limit is not None:
            items = items[: self.limit - self.count]
        self.count += len(items)
        if (
            not token
            or (self.limit is not None and self.count >= self.limit)
            or self.pages >= self.max_pages
        ):
            self.more = False
        elif token in self._seen:
            raise ProtocolError(
                "the server repeated a page token, so the listing would never end",
                excerpt=token[:60],
            )
        else:
            self._seen.add(token)
            self.token = token
        return items


class PollState:
    """Deadline on the monotonic clock, capped backoff between polls, change detection."""

    def __init__(
        self,
        core: Core,
        evaluation_id: str,
        timeout: float | None,
        interval: float | None,
        max_interval: float | None,
    ) -> None:
        cfg = core.config
        self.core = core
        self.evaluation_id = evaluation_id
        self.started = core.clock()
        total = cfg.wait_timeout if timeout is None else _positive("timeout", timeout)
        self.deadline = self.started + total
        self.interval = (
            cfg.poll_interval
            if interval is None
            else _positive("poll_interval", interval, allow_zero=True)
        )
        self.cap = (
            cfg.max_poll_interval
            if max_interval is None
            else _positive("max_poll_interval", max_interval, allow_zero=True)
        )
        self.cap = max(self.cap, self.interval)
        self.last: Evaluation | None = None
        self.last_error: Exception | None = None
        self.failing_since: float | None = None
        self._warned_unknown = False

    def remaining(self) -> float:
        return self.deadline - self.core.clock()

    def fail(self, exc: Exception) -> None:
        """Record a failed poll (the wait goes on): when the failures began, the latest error."""
        self.last_error = exc
        if self.failing_since is None:
            self.failing_since = self.core.clock()

    def failing_for(self) -> float | None:
        """Seconds the polls have been failing in a row; None when the last one was answered."""
        return None if self.failing_since is None else self.core.clock() - self.failing_since

    def event(self) -> PollEvent:
        """What the polls have seen so far, for an ``on_poll`` callback."""
        return PollEvent(
            self.evaluation_id,
            self.core.clock() - self.started,
            self.last,
            self.last_error if self.failing_since is not None else None,
            self.failing_for(),
        )

    def observe(self, ev: Evaluation) -> bool:
        """Record a snapshot; True when it differs from the previous one."""
        if ev.status is Status.UNKNOWN and not self._warned_unknown:
            self._warned_unknown = True
            logger.warning(
                "evaluation %s has an unknown status %r; still polling",
                ev.evaluation_id,
                _raw_status(ev),
            )
        changed = ev != self.last
        self.last = ev
        self.failing_since = None
        return changed

    def next_delay(self) -> float:
        """Seconds to sleep before the next poll; raises WaitTimeoutError past the deadline."""
        rem = self.remaining()
        if rem <= 0:
            failing = self.failing_for()
            raise WaitTimeoutError(
                self.evaluation_id,
                self.last,
                self.core.clock() - self.started,
                last_error=self.last_error if failing is not None else None,
                failing_for=failing,
            )
        delay = self.interval * self.core.rng.uniform(0.75, 1.0)
        self.interval = min(self.interval * 1.5, self.cap)
        return min(delay, rem)


def _raw_status(ev: Evaluation) -> Any:
    for k, v in ev.raw.items():
        if k.lower() in ("status", "state"):
            return v
    return None


def coerce_benchmarks(benchmarks: Any) -> tuple[Benchmark, ...]:
    """Validate and convert names / dicts / Benchmarks; at least one is required."""
    if isinstance(benchmarks, str | Benchmark | Mapping):
        benchmarks = [benchmarks]
    try:
        items = tuple(Benchmark.coerce(b) for b in benchmarks)
    except TypeError:
        raise ScaimindValueError(
            f"benchmarks must be a list of names, dicts or Benchmark, got {type(benchmarks).__name__}"
        ) from None
    if not items:
        raise ScaimindValueError("benchmarks is empty: pass at least one, e.g. ['mmlu']")
    return items


def _check_id(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ScaimindValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _quoted_id(name: str, value: Any) -> str:
    """A checked id, URL-quoted for use as one path segment."""
    return quote(_check_id(name, value), safe="")


class Screen(enum.Enum):
    """What a listing scan does with one item."""

    STOP = "stop"
    SKIP = "skip"
    CHECK = "check"


@dataclass
class Match:
    """What an existing evaluation must have to stand in for a new submit (job, model, checkpoint, benchmarks)."""

    job_id: str
    model_uri: str
    checkpoint_id: str
    benchmarks: tuple[Benchmark, ...]
    since: datetime | None = None
    statuses: frozenset[Status] | None = None

    @classmethod
    def build(
        cls,
        job_id: str,
        model_uri: str,
        benchmarks: Any,
        checkpoint_id: str = "",
        *,
        since: datetime | float | None = None,
        statuses: Iterable[Status | str] | None = None,
        now: datetime | None = None,
    ) -> Match:
        """Validate the arguments; ``since`` is a datetime or a window in seconds back from now."""
        if checkpoint_id is None:
            checkpoint_id = ""
        if not isinstance(checkpoint_id, str):
            raise ScaimindValueError(f"checkpoint_id must be a string, got {checkpoint_id!r}")
        when: datetime | None
        if since is None or isinstance(since, datetime):
            when = since if since is None or since.tzinfo else since.replace(tzinfo=UTC)
        else:
            window = _positive("since", since, allow_zero=True)
            when = (now or datetime.now(UTC)) - timedelta(seconds=window)
        return cls(
            _check_id("job_id", job_id),
            _check_id("model_uri", model_uri),
            checkpoint_id,
            coerce_benchmarks(benchmarks),
            when,
            frozenset(Status.parse(s) for s in statuses) if statuses is not None else None,
        )

    def screen(self, item: Evaluation) -> Screen:
        """What to do with a listing item: stop (older than the window), skip it or check (GET) it."""
        if self.since is not None and item.created_at is not None and item.created_at < self.since:
            return Screen.STOP
        if self.statuses is not None and item.status not in self.statuses:
            return Screen.SKIP
        if item.job_id and item.job_id != self.job_id:
            return Screen.SKIP
        if item.model_uri and item.model_uri != self.model_uri:
            return Screen.SKIP
        return Screen.CHECK

    def same_run(self, ev: Evaluation) -> bool:
        """True when a full record has the same job, model and checkpoint (and a wanted status)."""
        if ev.job_id != self.job_id or ev.model_uri != self.model_uri:
            return False
        if (ev.checkpoint_id or "") != self.checkpoint_id:
            return False
        return self.statuses is None or ev.status in self.statuses

    def matches(self, ev: Evaluation) -> bool:
        """True when a full record has the same job, model, checkpoint and benchmark keys."""
        if not self.same_run(ev):
            return False
        if ev.benchmarks:
            return Counter(b.key() for b in ev.benchmarks) == Counter(
                b.key() for b in self.benchmarks
            )
        names = sorted(r.benchmark for r in ev.results) or sorted(p.benchmark for p in ev.progress)
        return names == sorted(b.name for b in self.benchmarks)


# --- the core ------------------------------------------------------------------------------


def _unwrap(data: Any) -> Any:
    if isinstance(data, Mapping) and isinstance(data.get("data"), Mapping | list):
        return data["data"]
    return data


class Core:
    """Builds requests, decodes responses and runs every client operation as an I/O-free generator."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.rng = rng or random.Random()
        # learnt from a submit answer that echoes its Idempotency-Key: re-sending is then safe
        self.honours_keys = False
        # this client's key is masked in the package's log records for as long as it lives
        redactor = _RedactFilter(config.api_key.reveal())
        logger.addFilter(redactor)
        weakref.finalize(self, logger.removeFilter, redactor)

    def redact(self, text: str) -> str:
        return redact(text, (self.config.api_key.reveal(),))

    def decode(self, content: bytes, url: str) -> Any:
        """JSON body of a 2xx response, or ProtocolError with a short redacted excerpt."""
        try:
            return json.loads(content) if content.strip() else {}
        except (ValueError, UnicodeDecodeError):
            text = self.redact(content[:300].decode("utf-8", "replace"))
            raise ProtocolError(f"response from {url} is not JSON", excerpt=text[:200]) from None

    def status_error(self, response: httpx.Response, method: str, url: str) -> APIStatusError:
        """The typed error of a non-2xx response, carrying the server's message, code and request id."""
        status = response.status_code
        text = self.redact(response.content.decode("utf-8", "replace"))
        body: Any = text
        message = code = None
        with contextlib.suppress(ValueError):
            body = json.loads(text)
        if isinstance(body, Mapping):
            message = error_message(body)
            inner = body.get("error")
            raw_code = inner.get("code") if isinstance(inner, Mapping) else body.get("code")
            code = str(raw_code) if raw_code not in (None, "") else None
        if not message:
            message = text.strip()[:200] or response.reason_phrase or "no message"
        cls = _STATUS_ERRORS.get(status, ServerError if status >= 500 else APIStatusError)
        return cls(
            message,
            status_code=status,
            code=code,
            request_id=response.headers.get("x-request-id"),
            body=body,
            method=method,
            url=url,
        )

    # -- generators ------------------------------------------------------------------------

    def request(
        self,
        spec: Spec,
        *,
        deadline: float | None = None,
        reconcile: Callable[[], Gen] | None = None,
    ) -> Gen:
        """One logical call with retries; returns the decoded JSON answer.

        An ambiguous POST failure runs ``reconcile`` first: when it finds what the POST would
        have created, its JSON stands in for the answer. Every attempt carries the same request id (and, for a POST, the same Idempotency-Key).
        Against a coordinator known to honour that key, an ambiguous failure that will be
        retried skips ``reconcile``: the re-sent POST itself answers with the first outcome.
        """
        attempts = Attempts(self, spec, deadline)
        while True:
            try:
                response = yield attempts.send()
            except Exception as exc:
                if not _is_transport_error(exc):
                    raise
                step = attempts.on_exception(exc)
            else:
                step = attempts.on_response(response)
            resend_is_safe = self.honours_keys and step.delay is not None
            if step.ambiguous and reconcile is not None and not resend_is_safe:
                found = yield from reconcile()
                if found is not None:
                    return found
            if step.delay is None:
                return step.unwrap()
            yield Sleep(step.delay)

    def get(self, evaluation_id: str, *, deadline: float | None = None) -> Gen:
        path = Route.EVALUATION.path(evaluation_id=_quoted_id("evaluation_id", evaluation_id))
        data = yield from self.request(Spec("GET", path), deadline=deadline)
        return parse_evaluation(data)

    def list_page(self, page_size: int = 20, page_token: str | None = None) -> Gen:
        params: dict[str, Any] = {"page_size": check_page_size(page_size)}
        if page_token:
            params["page_token"] = page_token
        data = yield from self.request(Spec("GET", Route.EVALUATIONS, params=params))
        if isinstance(data, Mapping) and not isinstance(data.get("data", {}), Mapping | list):
            raise ProtocolError("listing 'data' is not an object", excerpt=str(data)[:200])
        return parse_page(data)

    def cancel(self, evaluation_id: str) -> Gen:
        path = Route.CANCEL.path(evaluation_id=_quoted_id("evaluation_id", evaluation_id))
        data = _unwrap((yield from self.request(Spec("POST", path))))
        if isinstance(data, Mapping) and any(
            k in data for k in ("evaluation_id", "evaluationId", "status")
        ):
            return parse_evaluation({"evaluation_id": evaluation_id, **data})
        return (yield from self.get(evaluation_id))

    def samples_page(
        self,
        evaluation_id: str,
        benchmark: str | None = None,
        page_size: int = 100,
        page_token: str | None = None,
    ) -> Gen:
        """One page of per-item records; SamplesNotAvailableError where the coordinator has none.

        A 404/405/501 of the samples route is told apart from an unknown evaluation by a GET of
        the evaluation: if that exists, the coordinator simply keeps no per-item records.
        """
        path = Route.SAMPLES.path(evaluation_id=_quoted_id("evaluation_id", evaluation_id))
        params: dict[str, Any] = {Field.PAGE_SIZE: check_page_size(page_size)}
        if benchmark is not None:
            params[Field.BENCHMARK] = _check_id("benchmark", benchmark)
        if page_token:
            params[Field.PAGE_TOKEN] = page_token
        try:
            data = yield from self.request(Spec("GET", path, params=params))
        except APIStatusError as exc:
            if exc.status_code not in (404, 405, 501):
                raise
            yield from self.get(evaluation_id)  # NotFoundError when the evaluation is unknown
            raise SamplesNotAvailableError(
                evaluation_id, f"the coordinator at {self.config.host} has no samples route"
            ) from None
        return parse_sample_page(data, benchmark or "")

    def get_job(self, job_id: str) -> Gen:
        path = Route.JOB.path(job_id=_quoted_id("job_id", job_id))
        data = _unwrap((yield from self.request(Spec("GET", path))))
        if not isinstance(data, Mapping):
            raise ProtocolError("job record is not an object", excerpt=str(data)[:200])
        return dict(data)

    def list_benchmarks(self) -> Gen:
        data = _unwrap((yield from self.request(Spec("GET", Route.BENCHMARKS))))
        if isinstance(data, Mapping):
            data = data.get(Field.BENCHMARKS, [])
        if not isinstance(data, list):
            raise ProtocolError("benchmark list is not a list", excerpt=str(data)[:200])
        return [
            b if isinstance(b, str) else str(b.get("name"))
            for b in data
            if isinstance(b, str) or (isinstance(b, Mapping) and b.get("name"))
        ]

    def _scan(
        self, match: Match, max_pages: int, page_size: int, visit: Callable[[Evaluation], bool]
    ) -> Gen:
        """Walk the listing newest first (within ``match``'s window), GETting candidates' full
        records; return the first record ``visit`` accepts, None when none does."""
        pager = Pager(page_size, max_pages=max_pages)
        while pager.more:
            page = yield from self.list_page(pager.page_size, pager.token)
            for item in pager.take(page.evaluations, page.next_page_token):
                verdict = match.screen(item)
                if verdict is Screen.STOP:
                    return None
                if verdict is Screen.SKIP:
                    continue
                full = item
                if not (item.job_id and item.model_uri and (item.benchmarks or item.results)):
                    try:
                        full = yield from self.get(item.evaluation_id)
                    except NotFoundError:
                        continue
                if visit(full):
                    return full
        return None

    def find(self, match: Match, *, max_pages: int = 5, page_size: int = 50) -> Gen:
        """Newest-first scan of the listing for an evaluation ``match`` accepts; None if none."""
        return (yield from self._scan(match, max_pages, page_size, match.matches))

    def find_for_each(
        self,
        match: Match,
        accept: Callable[[Evaluation, Benchmark], bool] | None = None,
        *,
        max_pages: int = 5,
        page_size: int = 50,
    ) -> Gen:
        """For each benchmark of ``match``, the newest evaluation of the same job, model and
        checkpoint (in ``match``'s statuses) whose specs hold it and that ``accept`` allows.

        One scan serves every benchmark; it stops once each has one. Returns a dict
        ``{Benchmark: Evaluation}`` without the benchmarks nothing was found for.
        """
        wanted = dict.fromkeys(match.benchmarks)
        found: dict[Benchmark, Evaluation] = {}

        def visit(ev: Evaluation) -> bool:
            if match.same_run(ev):
                held = {b.key() for b in ev.benchmarks}
                for spec in wanted:
                    if spec not in found and spec.key() in held and (accept or _yes)(ev, spec):
                        found[spec] = ev
            return len(found) == len(wanted)

        yield from self._scan(match, max_pages, page_size, visit)
        return found

    def submit(self, job_id: str, model_uri: str, benchmarks: Any, checkpoint_id: str = "") -> Gen:
        """POST an evaluation; an ambiguous failure is re-sent under the same key or looked up first."""
        match = Match.build(job_id, model_uri, benchmarks, checkpoint_id, since=SUBMIT_LOOKBACK)
        body: dict[str, Any] = {
            Field.JOB_ID: match.job_id,
            Field.MODEL_URI: match.model_uri,
            Field.CHECKPOINT_ID: match.checkpoint_id,
            Field.BENCHMARKS: [b.to_request() for b in match.benchmarks],
        }

        def reconcile() -> Gen:
            try:
                found = yield from self.find(match, max_pages=3)
            except (APIConnectionError, APIStatusError, ProtocolError) as exc:
                logger.warning("duplicate check after an ambiguous submit failed: %s", exc)
                return None
            if found is None:
                return None
            logger.warning(
                "submit outcome was unknown; found evaluation %s already created",
                found.evaluation_id,
            )
            return found.raw

        data = yield from self.request(
            Spec("POST", Route.EVALUATIONS, json=body, idempotent=False), reconcile=reconcile
        )
        inner = _unwrap(data)
        if not isinstance(inner, Mapping):
            raise ProtocolError("submit answer is not an object", excerpt=str(data)[:200])
        created = parse_evaluation({**body, **inner})
        logger.info("submitted evaluation %s for job %s", created.evaluation_id, match.job_id)
        return created

    def wait(
        self,
        evaluation_id: str,
        *,
        timeout: float | None = None,
        poll_interval: float | None = None,
        max_poll_interval: float | None = None,
        on_update: Callable[[Evaluation], Any] | None = None,
        raise_on_failure: bool = False,
        on_poll: Callable[[PollEvent], Any] | None = None,
    ) -> Gen:
        """Poll until a terminal status; transient GET failures only cost time, never end the wait.

        ``on_update`` sees each changed snapshot; ``on_poll`` a ``PollEvent`` after every poll,
        answered or failed (to show that a wait is alive, or that the coordinator is not).
        """
        _check_id("evaluation_id", evaluation_id)
        poll = PollState(self, evaluation_id, timeout, poll_interval, max_poll_interval)
        while True:
            try:
                ev = yield from self.get(evaluation_id, deadline=max(poll.remaining(), 0.001))
            except (APIConnectionError, ServerError, RateLimitError, ProtocolError) as exc:
                logger.info("polling %s: %s; will poll again", evaluation_id, exc)
                if not (isinstance(exc, APITimeoutError) and poll.remaining() <= 0):
                    poll.fail(exc)  # a poll cut short by the wait's own deadline is no failure
            else:
                if poll.observe(ev) and on_update is not None:
                    yield Notify(on_update, ev)
                if ev.is_terminal:
                    if raise_on_failure and ev.status is not Status.COMPLETED:
                        raise EvaluationFailedError(ev)
                    return ev
            if on_poll is not None:
                yield Notify(on_poll, poll.event())
            yield Sleep(poll.next_delay())

    def precheck(self, model_uri: str | None, benchmarks: Any) -> Gen:
        """Ask what submitting ``benchmarks`` for ``model_uri`` would score, queuing nothing.

        PrecheckNotAvailableError when the coordinator has no precheck route (404/405/501).
        """
        asked = coerce_benchmarks(benchmarks)
        body: dict[str, Any] = {Field.BENCHMARKS: [b.to_request() for b in asked]}
        if model_uri is not None:
            body[Field.MODEL_URI] = _check_id("model_uri", model_uri)
        try:
            data = yield from self.request(Spec("POST", Route.PRECHECK, json=body))
        except APIStatusError as exc:
            if exc.status_code not in (404, 405, 501):
                raise
            raise PrecheckNotAvailableError(self.config.host) from None
        return parse_precheck(data, asked)


def _yes(ev: Evaluation, spec: Benchmark) -> bool:
    return True


def _is_transport_error(exc: BaseException) -> bool:
    import httpx

    return isinstance(exc, httpx.TransportError)
