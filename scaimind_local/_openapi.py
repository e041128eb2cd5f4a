"""The OpenAPI 3.0 description of the coordinator's routes (served at /openapi.json)."""

from __future__ import annotations

from typing import Any

from scaimind_nb._contract import API_PREFIX, SERVED_STATUSES, Route

_INT64 = {"type": "string", "pattern": "^-?[0-9]+$"}
_TS = {"type": "string", "format": "date-time"}
_NUM = {"oneOf": [{"type": "number"}, {"type": "string", "enum": ["NaN", "Infinity", "-Infinity"]}]}
_STATUS = {
    "type": "string",
    "enum": list(SERVED_STATUSES),
}


def _obj(
    props: dict[str, Any], required: list[str] | None = None, extra: bool = True
) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": extra}
    if required:
        out["required"] = required
    return out


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _envelope(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": _obj({"data": _ref(name)}, ["data"])}}


def _ok(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": _envelope(name)}


def _errors(*codes: int) -> dict[str, Any]:
    content = {"application/json": {"schema": _ref("Error")}}
    return {str(c): {"description": "error", "content": content} for c in (401, *codes)}


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


_PAGE = [
    {
        "name": "page_size",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": 100},
    },
    {"name": "page_token", "in": "query", "schema": {"type": "string"}},
]

_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": (
        "A unique key per submission (e.g. a UUID), the same on every retry of it: a submit "
        "with a key seen in the last 24 h and the same body creates nothing and answers with "
        "the first evaluation (Idempotent-Replayed: true); with a different body, 422."
    ),
    "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"},
}
_IDEMPOTENCY_HEADERS = {
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

_SCHEMAS: dict[str, Any] = {
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
            "status": {"type": "string", "enum": ["COMPLETED", "FAILED"]},
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
                        "spec_index": {"type": "integer"},
                        "benchmark": {"type": "string"},
                        "index": {"type": "integer"},
                        "record": {"type": "object"},
                    }
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


def _body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


def openapi() -> dict[str, Any]:
    """The document; every route but /healthz needs the bearer key."""
    eid = [_path_param("evaluation_id")]
    paths: dict[str, Any] = {
        API_PREFIX + Route.EVALUATIONS: {
            "post": {
                "operationId": "submitEvaluation",
                "summary": "Queue an evaluation of a COMPLETED job's model",
                "parameters": [_IDEMPOTENCY_KEY],
                "requestBody": _body("SubmitRequest"),
                "responses": {
                    "200": {
                        **_ok("Evaluation", "the QUEUED record, or the first one for a key seen"),
                        "headers": _IDEMPOTENCY_HEADERS,
                    },
                    **_errors(400, 404, 409, 413, 422),
                },
            },
            "get": {
                "operationId": "listEvaluations",
                "summary": "Evaluations newest first, as job records",
                "parameters": _PAGE,
                "responses": {"200": _ok("EvaluationPage", "one page"), **_errors(400)},
            },
        },
        API_PREFIX + Route.EVALUATION: {
            "get": {
                "operationId": "getEvaluation",
                "parameters": eid,
                "responses": {"200": _ok("Evaluation", "the full record"), **_errors(404)},
            }
        },
        API_PREFIX + Route.CANCEL: {
            "post": {
                "operationId": "cancelEvaluation",
                "parameters": eid,
                "responses": {"200": _ok("Evaluation", "the record"), **_errors(404, 409)},
            }
        },
        API_PREFIX + Route.SAMPLES: {
            "get": {
                "operationId": "listSamples",
                "parameters": [
                    *eid,
                    {"name": "benchmark", "in": "query", "schema": {"type": "string"}},
                    *_PAGE,
                ],
                "responses": {"200": _ok("SamplePage", "per-sample records"), **_errors(400, 404)},
            }
        },
        API_PREFIX + Route.JOBS: {
            "post": {
                "operationId": "putJob",
                "summary": "Register a job (or update its model and status)",
                "requestBody": _body("JobRequest"),
                "responses": {"200": _ok("Job", "the job"), **_errors(400, 413, 422)},
            }
        },
        API_PREFIX + Route.JOB: {
            "get": {
                "operationId": "getJob",
                "parameters": [_path_param("job_id")],
                "responses": {"200": _ok("Job", "the job"), **_errors(404)},
            }
        },
        API_PREFIX + Route.BENCHMARKS: {
            "get": {
                "operationId": "listBenchmarks",
                "responses": {"200": _ok("Benchmarks", "supported names"), **_errors()},
            }
        },
        API_PREFIX + Route.PRECHECK: {
            "post": {
                "operationId": "precheck",
                "summary": "Check a model and benchmark specs without queuing anything",
                "description": (
                    "Per spec (in order) the data's digest, record count and source, or the first "
                    "problem that would stop it; the model's digest or its problem. Problems are "
                    "answers (200), not errors; only a malformed body (as a submit's) is a 400."
                ),
                "requestBody": _body("PrecheckRequest"),
                "responses": {
                    "200": _ok("PrecheckAnswer", "per-spec answers"),
                    **_errors(400, 413, 422),
                },
            }
        },
        "/healthz": {
            "get": {
                "operationId": "health",
                "security": [],
                "responses": {"200": _ok("Health", "the server is up")},
            }
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "scaimind_local", "version": "1.0.0"},
        "paths": paths,
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
