"""The one exception hierarchy of scaimind_nb; no message here ever holds the API key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._models import Evaluation

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "EvaluationFailedError",
    "NotFoundError",
    "PermissionDeniedError",
    "PrecheckNotAvailableError",
    "ProtocolError",
    "RateLimitError",
    "SamplesNotAvailableError",
    "ScaimindError",
    "ScaimindKeyError",
    "ScaimindValueError",
    "ServerError",
    "UnprocessableEntityError",
    "WaitTimeoutError",
]


class ScaimindError(Exception):
    """Base class of every error raised by scaimind_nb."""


class ScaimindValueError(ScaimindError, ValueError):
    """A bad argument, reported before any request is sent."""


class ScaimindKeyError(ScaimindError, KeyError):
    """A benchmark or metric that is not in a result; the message lists what is available."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class APIStatusError(ScaimindError):
    """The coordinator answered with an HTTP error status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        request_id: str | None = None,
        body: Any = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.message = message
        self.code = code
        self.request_id = request_id
        self.body = body
        self.method = method
        self.url = url
        where = f" ({method} {url})" if method and url else ""
        rid = f" [request id {request_id}]" if request_id else ""
        super().__init__(f"HTTP {status_code}{where}: {message}{rid}")


class BadRequestError(APIStatusError):
    """HTTP 400: the coordinator rejected the request body or parameters."""


class AuthenticationError(APIStatusError):
    """HTTP 401: the API key is missing or wrong (check SCAIGRID_API_KEY)."""


class PermissionDeniedError(APIStatusError):
    """HTTP 403: the API key may not do this."""


class NotFoundError(APIStatusError):
    """HTTP 404: no such evaluation, job or route."""


class ConflictError(APIStatusError):
    """HTTP 409: the request conflicts with the current state (e.g. already exists)."""


class UnprocessableEntityError(APIStatusError):
    """HTTP 422: the request was well-formed but semantically invalid."""


class RateLimitError(APIStatusError):
    """HTTP 429: too many requests; retried automatically up to the retry budget."""


class ServerError(APIStatusError):
    """HTTP 5xx: the coordinator failed; GETs are retried automatically."""


class APIConnectionError(ScaimindError):
    """The coordinator could not be reached or the connection broke."""


class APITimeoutError(APIConnectionError):
    """A request (including its retries) ran out of time."""


class ProtocolError(ScaimindError):
    """The coordinator's response was not the expected JSON; carries a short redacted excerpt."""

    def __init__(self, message: str, *, excerpt: str = "") -> None:
        self.excerpt = excerpt
        super().__init__(f"{message}: {excerpt!r}" if excerpt else message)


class EvaluationFailedError(ScaimindError):
    """An evaluation ended FAILED or CANCELLED (raised by ``wait(..., raise_on_failure=True)``)."""

    def __init__(self, evaluation: Evaluation) -> None:
        self.evaluation = evaluation
        self.evaluation_id = evaluation.evaluation_id
        self.reason = evaluation.error
        status = evaluation.status.value
        why = f": {self.reason}" if self.reason else ""
        super().__init__(f"evaluation {self.evaluation_id} ended {status}{why}")


class SamplesNotAvailableError(ScaimindError):
    """The coordinator keeps no per-item records for this evaluation (or has no samples route)."""

    def __init__(self, evaluation_id: str, reason: str) -> None:
        self.evaluation_id = evaluation_id
        self.reason = reason
        super().__init__(
            f"per-item results of evaluation {evaluation_id} are not available: {reason}"
        )


class PrecheckNotAvailableError(ScaimindError):
    """The coordinator has no precheck route (digests and problems cannot be asked for)."""

    def __init__(self, host: str) -> None:
        self.host = host
        super().__init__(f"the coordinator at {host} has no precheck route")


class WaitTimeoutError(ScaimindError, TimeoutError):
    """``wait`` hit its deadline; ``.last`` holds the last snapshot so the caller can resume.

    ``.last_error`` and ``.failing_for`` say what the polls saw at the end: the error of the last
    poll and for how many seconds the polls had been failing in a row (None when it answered).
    """

    def __init__(
        self,
        evaluation_id: str,
        last: Evaluation | None,
        elapsed: float,
        *,
        last_error: Exception | None = None,
        failing_for: float | None = None,
    ) -> None:
        self.evaluation_id = evaluation_id
        self.last = last
        self.elapsed = elapsed
        self.last_error = last_error
        self.failing_for = failing_for
        state = last.status.value if last is not None else "never fetched"
        polls = (
            f"; the polls have failed for the last {failing_for:.1f}s ({last_error})"
            if failing_for is not None
            else ""
        )
        super().__init__(
            f"evaluation {evaluation_id} not finished after {elapsed:.1f}s (last status: {state}"
            f"{polls}); call wait({evaluation_id!r}) again to resume or pass a larger timeout="
        )
