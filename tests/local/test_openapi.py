"""The OpenAPI description is generated from the route table and matches what is served."""

from __future__ import annotations

import json
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance
from starlette.routing import Route as StarletteRoute

from scaimind_local import LocalCoordinator
from scaimind_local._app import ENDPOINTS, Call, healthz, routes
from scaimind_local._openapi import SCHEMAS, Endpoint, Param, openapi
from scaimind_local._render import (
    error_body,
    render_evaluation,
    render_evaluation_page,
    render_job,
    render_sample_page,
)

schema = schemathesis.openapi.from_dict(openapi(ENDPOINTS))

ROW: dict[str, Any] = {
    "id": "eval_1",
    "job_id": "job",
    "model_uri": "scaidrive://org/m",
    "checkpoint_id": "",
    "status": "COMPLETED",
    "benchmarks": [
        {
            "name": "custom-qa",
            "dataset": "scaidrive://org/qa.jsonl",
            "data": {
                "digest": "sha256:" + "a" * 64,
                "records": 4,
                "source": "scaidrive://org/qa.jsonl",
            },
        },
        {"name": "custom-bad", "dataset": "scaidrive://org/bad.jsonl"},
    ],
    "model_digest": "sha256:" + "b" * 64,
    "progress": [{"benchmark": "custom-qa", "completed": 4, "total": 4}],
    "results": [
        {
            "benchmark": "custom-qa",
            "score": 0.5,
            "primary_metric": "exact_match",
            "metrics": {"exact_match": 0.5},
            "stderr": {},
            "num_samples": 4,
            "extra": {},
            "status": "COMPLETED",
        },
        {  # a benchmark that failed alone: no metrics, its status and error
            "benchmark": "custom-bad",
            "metrics": {},
            "num_samples": 0,
            "extra": {"spec_index": 1},
            "status": "FAILED",
            "error": {"code": "BENCHMARK_FAILED", "message": "RuntimeError: boom"},
        },
    ],
    "error": {"code": "X", "message": "y"},
    "cancel_requested": 0,
    "created_at": "2026-01-01T00:00:00.000000Z",
    "updated_at": "2026-01-01T00:00:00.000001Z",
    "started_at": "2026-01-01T00:00:00.000001Z",
    "completed_at": "2026-01-01T00:00:00.000001Z",
}
JOB = {"job_id": "j", "model_uri": "m", "status": "COMPLETED", "created_at": "t", "updated_at": "t"}
SAMPLE = {
    "spec_index": 0,
    "benchmark": "custom-qa",
    "idx": 3,
    "record": '{"id": "q3", "correct": true, "subject": "algebra"}',
}


def _properties(name: str, *path: str) -> set[str]:
    node = SCHEMAS[name]
    for key in path:
        node = node["properties"][key]["items"]
    return set(node["properties"])


def _operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}


def test_served_description_is_the_generated_one(coordinator: LocalCoordinator) -> None:
    assert coordinator.request("GET", "/openapi.json") == json.loads(json.dumps(openapi(ENDPOINTS)))


def test_every_served_route_and_method_is_described() -> None:
    served = {
        (method, route.path)
        for route in routes(ENDPOINTS)
        if isinstance(route, StarletteRoute)
        for method in route.methods or ()
        if method != "HEAD"  # Starlette answers HEAD wherever GET is served
    }
    assert served == _operations(openapi(ENDPOINTS))


def test_parameters_are_the_path_template_and_the_declared_ones() -> None:
    document = openapi(ENDPOINTS)
    for endpoint in ENDPOINTS:
        operation = document["paths"][endpoint.path][endpoint.method.lower()]
        described = [(p["in"], p["name"]) for p in operation.get("parameters", [])]
        expected = [("path", n) for n in endpoint.path_params]
        expected += [(p.where, p.name) for p in endpoint.params]
        assert described == expected, endpoint.operation_id
        assert ("requestBody" in operation) == (endpoint.body is not None)
        assert ("security" in operation) == endpoint.public


def test_a_route_joins_the_app_and_the_description_in_one_row() -> None:
    extra = Endpoint(
        "POST",
        "/v1/modules/scaimind/things/{thing_id}",
        healthz,
        "makeThing",
        "A new route",
        "Health",
        errors=(404,),
        params=(Param("colour", "query", {"type": "string"}),),
        body="JobRequest",
    )
    table = (*ENDPOINTS, extra)
    operation = openapi(table)["paths"][extra.path]["post"]
    assert operation["operationId"] == "makeThing"
    assert [p["name"] for p in operation["parameters"]] == ["thing_id", "colour"]
    assert {"401", "400", "404", "408", "413", "422"} <= set(operation["responses"])
    assert ("POST", extra.path) in {
        (m, r.path) for r in routes(table) if isinstance(r, StarletteRoute) for m in r.methods or ()
    }


def test_a_handler_sees_only_the_parameters_its_row_declares(api: Any) -> None:
    """An undeclared query parameter never reaches a handler: it is ignored, not an error."""
    assert set(Call.__dataclass_fields__) == {"service", "path", "params", "body", "reader"}
    listed = api.get("/evaluations", params={"page_size": "1", "colour": "red"})
    assert listed.status_code == 200, listed.text
    assert len(listed.json()["data"]["evaluations"]) <= 1


def test_the_schemas_name_every_field_the_rendering_sends() -> None:
    record = render_evaluation(ROW)
    assert set(record) == _properties("Evaluation")
    assert set().union(*record["results"]) == _properties("Result")
    assert set(record["benchmarks"][0]) == _properties("Evaluation", "benchmarks")
    assert set(record["progress"][0]) == _properties("Evaluation", "progress")
    page = render_evaluation_page([ROW], True, 1)
    assert set(page) == _properties("EvaluationPage")
    assert set(page["evaluations"][0]) == _properties("EvaluationPage", "evaluations")
    samples = render_sample_page([SAMPLE], True)
    assert set(samples) == _properties("SamplePage")
    assert set(samples["samples"][0]) == _properties("SamplePage", "samples")
    assert set(render_job(JOB)) == _properties("Job")
    error = json.loads(error_body(404, "gone"))
    assert set(error) == _properties("Error") and set(error["error"]) == {"code", "message"}


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_produces_a_server_error(case: Any, coordinator: LocalCoordinator) -> None:
    coord = coordinator
    case.call_and_validate(
        base_url=coord.url,
        headers={"Authorization": f"Bearer {coord.api_key}"},
        checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
    )
