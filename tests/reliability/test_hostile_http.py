"""Hostile input at every route of a live coordinator: only 2xx/4xx with the JSON error shape."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ._harness import scored_model

API = "/v1/modules/scaimind"
DATASET_LIMIT = 4096
ROUTES = [
    ("POST", f"{API}/evaluations"),
    ("GET", f"{API}/evaluations"),
    ("GET", f"{API}/evaluations/{{id}}"),
    ("POST", f"{API}/evaluations/{{id}}/cancel"),
    ("GET", f"{API}/evaluations/{{id}}/samples"),
    ("POST", f"{API}/jobs"),
    ("GET", f"{API}/jobs/{{id}}"),
    ("GET", f"{API}/benchmarks"),
    ("GET", "/healthz"),
    ("GET", "/openapi.json"),
]


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, scaimind_api_key: str) -> Iterator[Any]:
    """A coordinator of this module's own, with a small custom-dataset limit and a real job."""
    from scaimind_local import LocalCoordinator

    base = tmp_path_factory.mktemp("hostile")
    with LocalCoordinator(
        base / "db.sqlite",
        base / "drive",
        api_key=scaimind_api_key,
        workers=1,
        settings={"custom_max_bytes": DATASET_LIMIT},
    ) as coordinator:
        model_uri, _ = scored_model(coordinator.drive_root, tag="-hostile")
        coordinator.register_job("job_hostile", model_uri)
        yield coordinator


@pytest.fixture(scope="module")
def http(hostile: Any) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {hostile.api_key}"}
    with httpx.Client(base_url=hostile.url, headers=headers, timeout=30) as client:
        yield client


def _assert_clean(response: httpx.Response) -> None:
    assert response.status_code < 500, f"{response.status_code}: {response.text[:300]}"
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["code"], str) and error["code"]
        assert isinstance(error["message"], str) and error["message"]


_json = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(
                st.sampled_from(
                    [
                        "job_id",
                        "model_uri",
                        "checkpoint_id",
                        "benchmarks",
                        "name",
                        "dataset",
                        "num_samples",
                        "parameters",
                        "status",
                    ]
                ),
                st.text(max_size=8),
            ),
            children,
            max_size=5,
        ),
    ),
    max_leaves=20,
)
_bodies = st.one_of(
    _json.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=200),
    st.sampled_from(
        [b"", b"{", b"NaN", b'{"a": NaN}', b"\xff\xfe", b"[]" * 100, b'{"job_id": "\x00"}']
    ),
)
_ids = st.one_of(
    st.text(max_size=30).filter(lambda s: "/" not in s and s not in ("", ".", "..")),
    st.sampled_from(["eval_missing", "%00", "%2e%2e", "job_hostile", "a" * 5000]),
)
_queries = st.dictionaries(
    st.sampled_from(["page_size", "page_token", "benchmark", "x"]),
    st.one_of(
        st.text(max_size=30), st.integers().map(str), st.sampled_from(["0", "101", "-1", "1e3"])
    ),
    max_size=3,
)


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    route=st.sampled_from(ROUTES),
    ident=_ids,
    body=_bodies,
    query=_queries,
    content_type=st.sampled_from(
        ["application/json", "text/plain", "", "application/x-www-form-urlencoded"]
    ),
)
def test_any_request_gets_2xx_or_a_json_4xx(
    http: httpx.Client,
    route: tuple[str, str],
    ident: str,
    body: bytes,
    query: dict[str, str],
    content_type: str,
) -> None:
    method, template = route
    path = template.replace("{id}", quote(ident, safe=""))
    headers = {"Content-Type": content_type} if content_type else {}
    response = http.request(
        method, path, params=query, content=body if method == "POST" else None, headers=headers
    )
    _assert_clean(response)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    items=st.lists(st.one_of(st.text(max_size=12), _json), min_size=0, max_size=3),
    extra=st.dictionaries(st.sampled_from(["checkpoint_id", "model_uri"]), _json, max_size=2),
)
def test_near_valid_submissions_are_accepted_or_refused_cleanly(
    hostile: Any, http: httpx.Client, items: list[Any], extra: dict[str, Any]
) -> None:
    body = {"job_id": "job_hostile", "benchmarks": items, **extra}
    _assert_clean(http.post(f"{API}/evaluations", json=body))


@pytest.mark.parametrize("chunked", [False, True])
def test_oversized_body_is_refused_with_413(http: httpx.Client, chunked: bool) -> None:
    payload = b'{"job_id": "' + b"x" * (2 << 20) + b'"}'
    content: Any = (
        iter([payload[i : i + 65536] for i in range(0, len(payload), 65536)])
        if chunked
        else payload
    )
    response = http.post(f"{API}/evaluations", content=content)
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]["message"]


def test_oversized_dataset_is_refused_at_submit(hostile: Any, http: httpx.Client) -> None:
    from scaimind_local.testing import write_custom_dataset

    rows = [{"prompt": f"q{i}", "reference": "x" * 100} for i in range(100)]
    dataset = write_custom_dataset(hostile.drive_root, "org/eval/huge.jsonl", rows)
    body = {"job_id": "job_hostile", "benchmarks": [{"name": "custom-huge", "dataset": dataset}]}
    response = http.post(f"{API}/evaluations", json=body)
    assert response.status_code == 400
    assert f"limit of {DATASET_LIMIT} bytes" in response.json()["error"]["message"]


def test_drive_escape_in_a_submission_is_refused(hostile: Any, http: httpx.Client) -> None:
    for dataset in (
        "scaidrive://org/%2e%2e/%2e%2e/etc/passwd",
        "scaidrive://org/a%00b",
        "file:///etc/passwd",
    ):
        body = {"job_id": "job_hostile", "benchmarks": [{"name": "custom-x", "dataset": dataset}]}
        response = http.post(f"{API}/evaluations", json=body)
        assert response.status_code == 400, (dataset, response.text)
        assert response.json()["error"]["message"]


def test_405_names_the_allowed_methods(http: httpx.Client) -> None:
    """Regression (found by schemathesis): a 405 must carry the Allow header (RFC 9110)."""
    response = http.request("DELETE", f"{API}/benchmarks")
    assert response.status_code == 405
    assert "GET" in response.headers["allow"]
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    both = http.request("DELETE", f"{API}/evaluations")
    assert {"GET", "POST"} <= {m.strip() for m in both.headers["allow"].split(",")}


_SCHEMATHESIS_CONFIG = """
[[operations]]
include-operation-id = ["listEvaluations", "listSamples", "submitEvaluation"]
# 400 for what a schema cannot say: a page token this server never issued, an unknown
# benchmark name, a model or dataset missing from the drive
checks.positive_data_acceptance.expected-statuses = [200, 400, 401, 404, 409]
"""


@pytest.mark.slow
@pytest.mark.parametrize("credentials", [True, False], ids=["with-key", "without-key"])
def test_schemathesis_finds_nothing(hostile: Any, tmp_path: Path, credentials: bool) -> None:
    executable = shutil.which("schemathesis") or shutil.which("st")
    assert executable, "schemathesis is a dev dependency: pip install -e '.[dev]'"
    config = tmp_path / "schemathesis.toml"
    config.write_text(_SCHEMATHESIS_CONFIG)
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(hostile.request("GET", "/openapi.json")))
    cmd = [
        executable,
        "--config-file",
        str(config),
        "run",
        str(spec),
        "--url",
        hostile.url,
        "--checks",
        "all",
        "--max-examples",
        "15",
        "--seed",
        "1",
        "--workers",
        "2",
        "--phases",
        "examples,coverage,fuzzing",
        "--request-timeout",
        "30",
    ]
    if credentials:
        cmd += ["-H", f"Authorization: Bearer {hostile.api_key}"]
    proc = subprocess.run(
        cmd, cwd=tmp_path, capture_output=True, text=True, timeout=400, check=False
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert hostile.api_key not in proc.stdout + proc.stderr
