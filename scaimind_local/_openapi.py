"""The OpenAPI 3.0 description of the coordinator, generated from its route table.

`Endpoint` is one row of the table `scaimind_local._app.ENDPOINTS`: the method, the path, the
handler and what the description says about it (parameters, bodies, answers, errors). The app
builds its routes from the same rows and hands a handler only the parameters its row declares,
so a route, a method or a parameter cannot exist without being described. The component
schemas below are the shapes of bodies; tests check them against the rendering module.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from scaimind_nb._contract import SERVED_STATUSES, Status

_INT64 = {"type": "string", "pattern": "^-?[0-9]+$"}
_TS = {"type": "string", "format": "date-time"}
_NUM = {"oneOf": [{"type": "number"}, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}]}
_STATUS = {"type": "string", "enum": list(SERVED_STATUSES)}


def _obj(
    props: dict[str, Any], required: list[str] | None = None, extra: bool = True
) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": extra}
    if required:
        out["required"] = required
    return out


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


@dataclass(frozen=True)
class Param:
    """A query or header parameter an endpoint reads (the only ones its handler can see)."""

    name: str
    where: Literal["query", "header"]
    schema: Mapping[str, Any]
    description: str = ""

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "in": self.where, "schema": dict(self.schema)}
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class Endpoint:
    """One route and method of the coordinator: its handler and its description."""

    method: Literal["GET", "POST"]
    path: str
    """The full path template, e.g. `/v1/modules/scaimind/evaluations/{evaluation_id}`."""
    handler: Callable[..., Any]
    """A plain function runs in the thread pool; a coroutine function on the loop."""
    operation_id: str
    summary: str
    answer: str | None
    """The component schema of `data` in a 200 answer; None: the answer is not enveloped."""
    errors: tuple[int, ...] = ()
    """Error statuses besides the ones every such endpoint can answer (401, 400, 408, 413)."""
    params: tuple[Param, ...] = ()
    body: str | None = None
    """The component schema of the JSON request body, if the endpoint reads one."""
    answer_headers: Mapping[str, Any] = field(default_factory=dict)
    public: bool = False
    """No bearer key needed."""

    @property
    def path_params(self) -> list[str]:
        return [name for _, name, _, _ in string.Formatter().parse(self.path) if name]

    def statuses(self) -> tuple[int, ...]:
        """Every error status the endpoint can answer, sorted."""
        implied = set(self.errors)
        if not self.public:
            implied.add(401)
        if self.body is not None:
            implied |= {400, 408, 413, 422}
        if self.params:
            implied.add(400)
        return tuple(sorted(implied))

    def describe(self) -> dict[str, Any]:
        """The OpenAPI operation object."""
        error = {"application/json": {"schema": _ref("Error")}}
        if self.answer is None:
            ok: dict[str, Any] = {"application/json": {"schema": {"type": "object"}}}
        else:
            ok = {"application/json": {"schema": _obj({"data": _ref(self.answer)}, ["data"])}}
        responses: dict[str, Any] = {"200": {"description": self.summary, "content": ok}}
        if self.answer_headers:
            responses["200"]["headers"] = dict(self.answer_headers)
        for status in self.statuses():
            responses[str(status)] = {"description": "error", "content": error}
        out: dict[str, Any] = {
            "operationId": self.operation_id,
            "summary": self.summary,
            "responses": responses,
        }
        params = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in self.path_params
        ] + [p.describe() for p in self.params]
        if params:
            out["parameters"] = params
        if self.body is not None:
            out["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _ref(self.body)}},
            }
        if self.public:
            out["security"] = []
        return out


def openapi(endpoints: Sequence[Endpoint]) -> dict[str, Any]:
    """The OpenAPI 3.0 document of a route table; every operation not `public` needs the key."""
    paths: dict[str, Any] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = endpoint.describe()
    return {
        "openapi": "3.0.3",
        "info": {"title": "scaimind_local", "version": "1.0.0"},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


PAGE_SIZE = Param("page_size", "query", {"type": "integer", "minimum": 1, "maximum": 100})
PAGE_TOKEN = Param(
    "page_token", "query", {"type": "string"}, "next_page_token of the previous page, as is"
)
BENCHMARK = Param("benchmark", "query", {"type": "string"}, "only this benchmark's samples")
IDEMPOTENCY_KEY = Param(
    "Idempotency-Key",
    "header",
    {"type": "string", "pattern": "^[!-~]{1,255}$"},
    "A unique key per submission (e.g. a UUID), the same on every retry of it: a submit "
    "with a key seen in the last 24 h and the same body creates nothing and answers with "
    "the first evaluation (Idempotent-Replayed: true); with a different body, 422.",
)
IDEMPOTENCY_HEADERS = {
    "Idempotency-Key": {
        "description": "the request's key, echoed when one was sent",
        "schema": {"type": "string"},
    },
    "Idempotent-Replayed": {
        "description": "`true` when the answer is the replay of an earlier submit with this key",
        "schema": {"type": "string", "enum": ["true"]},
    },
}

_SPEC_LIST = {
    "type": "array",
    "minItems": 1,
    "maxItems": 100,
    "items": {"oneOf": [{"type": "string", "minLength": 1}, _ref("BenchmarkSpec")]},
}
"""The `benchmarks` of a submit or a precheck: names or specs."""

_RECORD_SPEC = {
    "name": {"type": "string"},
    "dataset": {"type": "string"},
    "num_samples": _INT64,
    "parameters": {"type": "object", "additionalProperties": {"type": "string"}},
    "data": _ref("DataInfo"),
}
"""A benchmark spec as a record (and a precheck answer) renders it, with the data it scores."""

SCHEMAS: dict[str, Any] = {
    "Error": _obj(
        {
            "error": _obj(
                {"code": {"type": "string"}, "message": {"type": "string"}}, ["code", "message"]
            )
        },
        ["error"],
    ),
    "BenchmarkSpec": _obj(
        {
            "name": {"type": "string", "minLength": 1},
            "dataset": {"type": "string", "nullable": True},
            "num_samples": {
                "oneOf": [
                    {"type": "integer", "minimum": 1},
                    {"type": "string", "pattern": "^[1-9][0-9]*$"},
                ],
                "nullable": True,
            },
            "parameters": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "nullable": True,
            },
        },
        ["name"],
        extra=False,
    ),
    "SubmitRequest": _obj(
        {
            "job_id": {"type": "string", "minLength": 1},
            "model_uri": {"type": "string"},
            "checkpoint_id": {"type": "string"},
            "benchmarks": _SPEC_LIST,
        },
        ["job_id", "benchmarks"],
        extra=False,
    ),
    "Result": _obj(
        {
            "benchmark": {"type": "string"},
            "score": _NUM,
            "primary_metric": {"type": "string"},
            "metrics": {"type": "object", "additionalProperties": _NUM},
            "stderr": {"type": "object", "additionalProperties": _NUM},
            "num_samples": _INT64,
            "extra": {"type": "object"},
            "status": {"type": "string", "enum": [Status.COMPLETED, Status.FAILED]},
            "error": _obj({"code": {"type": "string"}, "message": {"type": "string"}}),
        },
        ["benchmark", "metrics", "num_samples"],
    ),
    "DataInfo": _obj(
        {
            "digest": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
            "records": {"type": "integer", "minimum": 0},
            "source": {"type": "string"},
        },
        ["digest"],
    ),
    "Evaluation": _obj(
        {
            "evaluation_id": {"type": "string"},
            "job_id": {"type": "string"},
            "model_uri": {"type": "string"},
            "checkpoint_id": {"type": "string"},
            "status": _STATUS,
            "benchmarks": {"type": "array", "items": _obj(_RECORD_SPEC)},
            "model_digest": {"type": "string"},
            "progress": {
                "type": "array",
                "items": _obj(
                    {"benchmark": {"type": "string"}, "completed": _INT64, "total": _INT64}
                ),
            },
            "results": {"type": "array", "items": _ref("Result")},
            "error": _obj({"code": {"type": "string"}, "message": {"type": "string"}}),
            "cancel_requested": {"type": "boolean"},
            "created_at": _TS,
            "updated_at": _TS,
            "started_at": _TS,
            "completed_at": _TS,
        },
        ["evaluation_id", "job_id", "status", "benchmarks", "created_at", "updated_at"],
    ),
    "EvaluationPage": _obj(
        {
            "evaluations": {
                "type": "array",
                "items": _obj(
                    {
                        "job_id": {"type": "string"},
                        "name": {"type": "string"},
                        "type": {"type": "string"},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "status": _STATUS,
                        "created_at": _TS,
                        "updated_at": _TS,
                    },
                    ["job_id", "status", "created_at"],
                ),
            },
            "next_page_token": {"type": "string"},
            "total_count": _INT64,
        },
        ["evaluations", "next_page_token", "total_count"],
    ),
    "SamplePage": _obj(
        {
            "samples": {
                "type": "array",
                "items": _obj(
                    {
                        "item_id": {"type": "string"},
                        "benchmark": {"type": "string"},
                        "spec_index": {"type": "integer"},
                        "index": {"type": "integer"},
                        "correct": {"type": "boolean"},
                        "score": {"type": "number"},
                        "cluster": {"type": "string"},
                        "record": {"type": "object"},
                    },
                    ["item_id", "benchmark", "spec_index", "index", "record"],
                ),
            },
            "next_page_token": {"type": "string"},
        },
        ["samples", "next_page_token"],
    ),
    "JobRequest": _obj(
        {
            "job_id": {"type": "string", "minLength": 1},
            "model_uri": {"type": "string", "minLength": 1},
            "status": {
                "type": "string",
                "enum": [*_STATUS["enum"], *(s.lower() for s in _STATUS["enum"]), None],
                "nullable": True,
            },
        },
        ["job_id", "model_uri"],
        extra=False,
    ),
    "Job": _obj(
        {
            "job_id": {"type": "string"},
            "model_uri": {"type": "string"},
            "status": _STATUS,
            "created_at": _TS,
            "updated_at": _TS,
        },
        ["job_id", "model_uri", "status"],
    ),
    "Benchmarks": _obj(
        {"benchmarks": {"type": "array", "items": {"type": "string"}}}, ["benchmarks"]
    ),
    "Health": _obj({"status": {"type": "string"}}, ["status"]),
    # precheck
    "PrecheckRequest": _obj(
        {
            "model_uri": {"type": "string", "nullable": True},
            "benchmarks": _SPEC_LIST,
        },
        ["benchmarks"],
        extra=False,
    ),
    "PrecheckAnswer": _obj(
        {
            "benchmarks": {
                "type": "array",
                "items": _obj({**_RECORD_SPEC, "problem": {"type": "string"}}, ["name"]),
            },
            "model_uri": {"type": "string"},
            "model_digest": {"type": "string"},
            "model_problem": {"type": "string"},
        },
        ["benchmarks"],
    ),
}
