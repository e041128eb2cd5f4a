"""The wire contract shared by the client (scaimind_nb) and the embedded coordinator (scaimind_local).

Dependency-free (stdlib only) so the coordinator can import it without the notebook layer.
It is the one place that spells the API prefix, the route paths, the status names and the
field names of requests, records and samples; everything else refers to these constants.
Renderings from other coordinator versions are still decoded tolerantly by the normaliser:
these names are what *we* send and what scaimind_local serves.
"""

from __future__ import annotations

import enum

__all__ = [
    "API_PREFIX",
    "JOB_FIELDS",
    "PRECHECK_FIELDS",
    "SPEC_FIELDS",
    "SUBMIT_FIELDS",
    "TERMINAL_STATUSES",
    "ErrorCode",
    "Field",
    "Route",
    "SampleField",
    "Status",
]

API_PREFIX = "/v1/modules/scaimind"
"""Every ScaiMind route lives under this prefix of the coordinator's host."""


class Route(enum.StrEnum):
    """Route paths under API_PREFIX, as Starlette path templates."""

    EVALUATIONS = "/evaluations"
    EVALUATION = "/evaluations/{evaluation_id}"
    CANCEL = "/evaluations/{evaluation_id}/cancel"
    SAMPLES = "/evaluations/{evaluation_id}/samples"
    JOBS = "/jobs"
    JOB = "/jobs/{job_id}"
    BENCHMARKS = "/benchmarks"
    PRECHECK = "/precheck"

    def path(self, **params: str) -> str:
        """The path with its ``{placeholders}`` filled in (values must already be URL-quoted)."""
        return self.value.format(**params)


class Status(enum.StrEnum):
    """Lifecycle state of an evaluation (and of a job); COMPLETED, FAILED and CANCELLED are terminal.

    ``UNKNOWN`` exists only on the client side: a status this version cannot name.
    """

    PENDING = "PENDING"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    UNKNOWN = "UNKNOWN"

    @property
    def is_terminal(self) -> bool:
        """True for COMPLETED, FAILED and CANCELLED."""
        return self in TERMINAL_STATUSES

    @classmethod
    def parse(cls, value: object) -> Status:
        """Map any rendering (``completed``, ``STATUS_COMPLETED``, ``2``, missing) to a Status.

        Integers follow the proto order 0 UNSPECIFIED→PENDING, 1 RUNNING, 2 COMPLETED,
        3 FAILED, 4 CANCELLED, 5 QUEUED; a missing value is the zero value PENDING; anything
        unrecognised is UNKNOWN.
        """
        if isinstance(value, Status):
            return value
        if value is None:
            return cls.PENDING
        if isinstance(value, bool):
            return cls.UNKNOWN
        if isinstance(value, int):
            return _BY_NUMBER.get(value, cls.UNKNOWN)
        if not isinstance(value, str):
            return cls.UNKNOWN
        hit = _STATUS_CACHE.get(value)
        if hit is None:
            hit = _parse_status_text(value)
            if len(_STATUS_CACHE) < 1024:
                _STATUS_CACHE[value] = hit
        return hit


TERMINAL_STATUSES = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})
SERVED_STATUSES = tuple(s for s in Status if s is not Status.UNKNOWN)
"""The statuses a coordinator may send (every member but UNKNOWN), in lifecycle order."""

_BY_NUMBER = {
    0: Status.PENDING,
    1: Status.RUNNING,
    2: Status.COMPLETED,
    3: Status.FAILED,
    4: Status.CANCELLED,
    5: Status.QUEUED,
}
_STATUS_WORDS = {
    **{s.value: s for s in Status},
    "UNSPECIFIED": Status.PENDING,
    "CREATED": Status.PENDING,
    "SUBMITTED": Status.PENDING,
    "SCHEDULED": Status.QUEUED,
    "IN_PROGRESS": Status.RUNNING,
    "STARTED": Status.RUNNING,
    "SUCCEEDED": Status.COMPLETED,
    "SUCCESS": Status.COMPLETED,
    "DONE": Status.COMPLETED,
    "FINISHED": Status.COMPLETED,
    "ERROR": Status.FAILED,
    "ERRORED": Status.FAILED,
    "CANCELED": Status.CANCELLED,
}
_STATUS_SUFFIXES = sorted(_STATUS_WORDS, key=len, reverse=True)
_STATUS_CACHE: dict[str, Status] = {}


def _parse_status_text(text: str) -> Status:
    word = text.strip().upper().replace("-", "_").replace(" ", "_")
    if not word:
        return Status.PENDING
    if word.isdigit():
        return _BY_NUMBER.get(int(word), Status.UNKNOWN)
    if word in _STATUS_WORDS:
        return _STATUS_WORDS[word]
    for suffix in _STATUS_SUFFIXES:
        if word.endswith("_" + suffix):
            return _STATUS_WORDS[suffix]
    return Status.UNKNOWN


class Field(enum.StrEnum):
    """Field names of requests and of the records scaimind_local serves."""

    # submit body and record
    JOB_ID = "job_id"
    MODEL_URI = "model_uri"
    CHECKPOINT_ID = "checkpoint_id"
    BENCHMARKS = "benchmarks"
    # benchmark spec
    NAME = "name"
    DATASET = "dataset"
    NUM_SAMPLES = "num_samples"
    PARAMETERS = "parameters"
    # record
    EVALUATION_ID = "evaluation_id"
    STATUS = "status"
    RESULTS = "results"
    PROGRESS = "progress"
    ERROR = "error"
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    STARTED_AT = "started_at"
    COMPLETED_AT = "completed_at"
    CANCEL_REQUESTED = "cancel_requested"
    MODEL_DIGEST = "model_digest"
    """Content digest (``sha256:<hex>``) of the model artefact that was evaluated."""
    # progress entry (one per benchmark spec)
    COMPLETED = "completed"
    TOTAL = "total"
    # per-benchmark result
    BENCHMARK = "benchmark"
    SCORE = "score"
    PRIMARY_METRIC = "primary_metric"
    """The metric the coordinator names as the result's score."""
    PROPORTIONS = "proportion_metrics"
    """Metrics that are proportions of samples (accuracy, exact_match, pass@1, ...)."""
    METRICS = "metrics"
    STDERR = "stderr"
    EXTRA = "extra"
    DATA = "data"
    """On a benchmark spec of a record: ``{digest, records, source}`` of the data it scored."""
    DIGEST = "digest"
    RECORDS = "records"
    SOURCE = "source"
    # precheck answer
    PROBLEM = "problem"
    """On a spec of a precheck answer: the first problem that would stop it (absent when none)."""
    MODEL_PROBLEM = "model_problem"
    """On a precheck answer: why the model cannot be evaluated (absent when it can)."""
    # listings and pages (a listed item is the evaluation's own job record)
    TYPE = "type"
    LABELS = "labels"
    PARENT_JOB_ID = "parent_job_id"
    EVALUATIONS = "evaluations"
    SAMPLES = "samples"
    NEXT_PAGE_TOKEN = "next_page_token"
    TOTAL_COUNT = "total_count"
    PAGE_SIZE = "page_size"
    PAGE_TOKEN = "page_token"


class SampleField(enum.StrEnum):
    """Field names of one per-item record served by the samples route."""

    ITEM_ID = "item_id"
    """Stable across evaluations of the same data: pairs items of two evaluations."""
    BENCHMARK = "benchmark"
    SPEC_INDEX = "spec_index"
    INDEX = "index"
    CORRECT = "correct"
    """True/False for binary outcomes; absent when the item has a graded score only."""
    SCORE = "score"
    """The item's score in [0, 1] (1.0/0.0 for binary outcomes)."""
    CLUSTER = "cluster"
    """The unit items share (an MMLU subject), for clustered standard errors."""
    RECORD = "record"
    """What the coordinator stored for the item (prompt, answer, reference, verdict ...)."""


class ErrorCode(enum.StrEnum):
    """The ``error.code`` of an error body, by HTTP status."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    UNPROCESSABLE_ENTITY = "UNPROCESSABLE_ENTITY"
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
    HEADERS_TOO_LARGE = "HEADERS_TOO_LARGE"
    INTERNAL = "INTERNAL"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def for_status(cls, status: int) -> ErrorCode:
        """The code a coordinator sends with an HTTP error status."""
        return _CODE_BY_STATUS.get(status, cls.UNKNOWN)


_CODE_BY_STATUS = {
    400: ErrorCode.INVALID_ARGUMENT,
    401: ErrorCode.UNAUTHENTICATED,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    408: ErrorCode.REQUEST_TIMEOUT,
    409: ErrorCode.FAILED_PRECONDITION,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    422: ErrorCode.UNPROCESSABLE_ENTITY,
    431: ErrorCode.HEADERS_TOO_LARGE,
    500: ErrorCode.INTERNAL,
}

SUBMIT_FIELDS = (Field.JOB_ID, Field.MODEL_URI, Field.CHECKPOINT_ID, Field.BENCHMARKS)
"""The keys of a submit body (``POST /evaluations``)."""
SPEC_FIELDS = (Field.NAME, Field.DATASET, Field.NUM_SAMPLES, Field.PARAMETERS)
"""The keys of one benchmark spec in a submit body."""
JOB_FIELDS = (Field.JOB_ID, Field.MODEL_URI, Field.STATUS)
"""The keys of a job registration body (``POST /jobs``)."""
PRECHECK_FIELDS = (Field.MODEL_URI, Field.BENCHMARKS)
"""The keys of a precheck body (``POST /precheck``): specs as in a submit, the model optional."""
