"""Schemathesis against the served OpenAPI description: no input produces a 5xx."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from scaimind_local import LocalCoordinator
from scaimind_local._openapi import openapi

schema = schemathesis.openapi.from_dict(openapi())


def test_served_description_is_the_documented_one(coordinator: LocalCoordinator) -> None:
    assert coordinator.request("GET", "/openapi.json") == openapi()


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_produces_a_server_error(case, coordinator: LocalCoordinator) -> None:
    coord = coordinator
    case.call_and_validate(
        base_url=coord.url,
        headers={"Authorization": f"Bearer {coord.api_key}"},
        checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
    )
