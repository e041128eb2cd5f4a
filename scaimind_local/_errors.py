"""The coordinator's errors: one tree, each class one HTTP status and the code its body carries.

Every error a request can meet is an `ApiError`; the app answers it as
`{"error": {"code", "message"}}` with the class's status. `InvalidBenchmark` is the 400 that
benchmark runners and model backends raise (at submit time it is the answer; in a worker it
fails the evaluation with the same code and message).
"""

from __future__ import annotations

from collections.abc import Mapping

from scaimind_nb._contract import ErrorCode

__all__ = [
    "ApiError",
    "BadRequest",
    "FailedPrecondition",
    "HeadersTooLarge",
    "InvalidBenchmark",
    "NotFound",
    "PayloadTooLarge",
    "RequestTimeout",
    "Unauthenticated",
    "UnprocessableEntity",
    "shown",
]


def shown(value: object, limit: int = 80) -> str:
    """A value as an error message quotes it: its repr, cut to `limit` characters (a URI or a
    number can be kilobytes long). Lone surrogates come out escaped, so any message encodes."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


class ApiError(Exception):
    """An error answered with `status` and `{"error": {"code", "message"}}`.

    Subclasses fix the status; `ApiError(message, status=405)` covers the rare others.
    """

    status = 500

    def __init__(
        self, message: str, *, status: int | None = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        self.headers = dict(headers or {})

    @property
    def code(self) -> ErrorCode:
        """The `error.code` of the answer, from the contract's table of statuses."""
        return ErrorCode.for_status(self.status)


class BadRequest(ApiError):
    """400: the request is malformed or asks for something this server cannot do."""

    status = 400


class Unauthenticated(ApiError):
    """401: no bearer key, or the wrong one."""

    status = 401


class NotFound(ApiError):
    """404: no such job, evaluation or route."""

    status = 404


class RequestTimeout(ApiError):
    """408: the request body did not arrive in time."""

    status = 408


class FailedPrecondition(ApiError):
    """409: the resource is in a state that does not allow the request."""

    status = 409


class PayloadTooLarge(ApiError):
    """413: the request body is larger than the server accepts."""

    status = 413


class UnprocessableEntity(ApiError):
    """422: well-formed JSON of the wrong kind, or a reused Idempotency-Key."""

    status = 422


class HeadersTooLarge(ApiError):
    """431: the request line and headers are larger than the server accepts."""

    status = 431


class InvalidBenchmark(BadRequest, ValueError):
    """The benchmark spec or model cannot run here; the message is shown to the user."""
