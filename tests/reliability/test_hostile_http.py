"""Hostile requests at every route of a live coordinator: only 2xx, or a 4xx in the error shape.

Every response this module receives, over httpx or a raw socket, goes through `_check`: no
5xx, a 4xx carries `{"error": {"code", "message"}}`, and no body names the server's drive
root, database or their folder. The strategies generate what found the audit's 500s (lone
surrogates, deep nesting, Unicode digits, huge integers, long path components, foreign page
tokens, case variants of headers); each finding is also a named regression below. With
SCAIMIND_HOSTILE_TALLY=path, the module writes how many requests it sent (schemathesis's test
cases counted once each) and how many got a 5xx (`benchmarks/reliability.py` prints them).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from scaimind_nb._contract import API_PREFIX as API

from ._harness import scored_model

DATASET_LIMIT = 4096
REQUEST_TIMEOUT = 1.0
REGEX_TIMEOUT = 0.2
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
TALLY: Counter[str] = Counter()
"""Requests this module sent ("tried") and 5xx answers it got ("5xx")."""


@pytest.fixture(scope="module", autouse=True)
def _write_tally() -> Iterator[None]:
    yield
    target = os.environ.get("SCAIMIND_HOSTILE_TALLY")
    if target:
        Path(target).write_text(json.dumps(dict(TALLY)))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, scaimind_api_key: str) -> Iterator[Any]:
    """A coordinator of this module's own, with small limits, a real job and model."""
    from scaimind_local import LocalCoordinator

    base = tmp_path_factory.mktemp("hostile")
    with LocalCoordinator(
        base / "db.sqlite",
        base / "drive",
        api_key=scaimind_api_key,
        workers=1,
        settings={
            "custom_max_bytes": DATASET_LIMIT,
            "request_timeout": REQUEST_TIMEOUT,
            "regex_timeout": REGEX_TIMEOUT,
        },
    ) as coordinator:
        model_uri, benchmark = scored_model(coordinator.drive_root, tag="-hostile")
        coordinator.register_job("job_hostile", model_uri)
        coordinator.benchmark = benchmark
        yield coordinator


def _secrets_of(coordinator: Any) -> list[str]:
    """The server paths no response may contain."""
    paths = {coordinator.drive_root, coordinator.db_path, coordinator.db_path.parent}
    return sorted({str(p) for p in paths} | {str(Path(p).resolve()) for p in paths})


def _check(status: int, body: bytes, forbidden: list[str]) -> None:
    """The rule every answer obeys (and the tally that benchmarks/reliability.py prints)."""
    TALLY["tried"] += 1
    if status >= 500:
        TALLY["5xx"] += 1
    assert status < 500, f"{status}: {body[:300]!r}"
    text = body.decode("utf-8", "replace")
    for path in forbidden:
        assert path not in text, f"the answer names the server path {path}: {text[:300]}"
    if status >= 400:
        error = json.loads(body)["error"]
        assert set(error) == {"code", "message"}, error
        assert isinstance(error["code"], str) and error["code"]
        assert isinstance(error["message"], str) and error["message"]


@pytest.fixture(scope="module")
def http(hostile: Any) -> Iterator[httpx.Client]:
    """An authenticated client whose every response is checked by `_check`."""
    forbidden = _secrets_of(hostile)

    def hook(response: httpx.Response) -> None:
        _check(response.status_code, response.read(), forbidden)

    headers = {"Authorization": f"Bearer {hostile.api_key}"}
    with httpx.Client(
        base_url=hostile.url, headers=headers, timeout=30, event_hooks={"response": [hook]}
    ) as client:
        yield client


@pytest.fixture(scope="module")
def evaluation_id(hostile: Any, http: httpx.Client) -> str:
    """A real evaluation, so the routes under /evaluations/{id} get past their 404."""
    body = {"job_id": "job_hostile", "benchmarks": [hostile.benchmark]}
    return str(http.post(f"{API}/evaluations", json=body).json()["data"]["evaluation_id"])


def raw(coordinator: Any, data: bytes, *, then: bytes | None = None) -> tuple[int, bytes, bytes]:
    """Send raw bytes and read the answer until the server closes: (status, head, body)."""
    host, port = coordinator.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(data)
        if then is not None:
            sock.sendall(then)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    _check(status, body, _secrets_of(coordinator))
    return status, head.lower(), body


def _query(params: dict[str, str]) -> str:
    """A query string as a hostile client may send it: lone surrogates as their UTF-8 bytes."""
    return "?" + "&".join(
        f"{quote(k)}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}"
        for k, v in params.items()
    )


def _message(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    return str(response.json()["error"]["message"])


# strategies: what found the audit's 500s

_surrogates = st.characters(categories=["Cs"])
_unicode_digits = st.characters(categories=["Nd", "No", "Nl"])
_texts = st.one_of(
    st.text(max_size=20),
    st.text(st.one_of(st.characters(), _surrogates), max_size=12),  # lone "\ud800" and kin
    st.text(_unicode_digits, min_size=1, max_size=6),  # "²", "١٢": isdigit() but not int()
    st.integers(4200, 6000).map(lambda n: "9" * n),  # past int()'s 4300-digit limit
)
_huge_ints = st.one_of(
    st.integers(min_value=2**63 - 2, max_value=2**70), st.integers(max_value=-(2**63))
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    _huge_ints,
    st.floats(allow_nan=False, allow_infinity=False),
    _texts,
)
_FIELD_NAMES = [
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
_json = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(_FIELD_NAMES), _texts), children, max_size=5),
    ),
    max_leaves=20,
)


def _nest(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


_deep = st.integers(30, 6000).map(_nest)  # around MAX_DEPTH, and past json's ~1000 levels
_path_segments = st.one_of(
    st.text(min_size=1, max_size=8).filter(lambda s: "/" not in s),
    st.integers(250, 300).map(lambda n: "a" * n),  # around NAME_MAX (255 bytes)
    st.integers(85, 90).map(lambda n: "é" * n),  # 2 bytes a character: over 255 bytes at 128
    st.sampled_from(["..", ".", "", "%2e%2e", "%00", "\x00"]),
)
_drive_uris = st.one_of(
    st.lists(_path_segments, min_size=1, max_size=6).map(lambda p: "scaidrive://" + "/".join(p)),
    st.integers(1000, 5000).map(lambda n: "scaidrive://" + "a/" * n + "x.jsonl"),  # many segments
    _texts.map(lambda t: "scaidrive://org/" + t),
)


def _token(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_tokens = st.one_of(
    st.text(max_size=30),
    _json.map(_token),
    _deep.map(lambda s: _token(s.encode())),
    st.tuples(_huge_ints, st.integers()).map(lambda t: _token(list(t))),
    st.tuples(_texts, _texts).map(lambda t: _token(list(t))),
    st.binary(max_size=20).map(_token),
)
_bodies = st.one_of(
    _json.map(lambda v: json.dumps(v).encode()),
    _deep.map(str.encode),
    _drive_uris.map(
        lambda uri: json.dumps(
            {"job_id": "job_hostile", "benchmarks": [{"name": "custom-x", "dataset": uri}]}
        ).encode()
    ),
    st.binary(max_size=200),
    st.sampled_from(
        [b"", b"{", b"NaN", b'{"a": NaN}', b"\xff\xfe", b"[]" * 100, b'{"job_id": "\x00"}']
    ),
)
_ids = st.one_of(
    st.text(max_size=30).filter(lambda s: "/" not in s and s not in ("", ".", "..")),
    st.sampled_from(["eval_missing", "%00", "%2e%2e", "job_hostile", "a" * 5000, "%ED%A0%80"]),
)
_queries = st.dictionaries(
    st.sampled_from(["page_size", "page_token", "benchmark", "x"]),
    st.one_of(
        st.text(max_size=30),
        st.text(_unicode_digits, min_size=1, max_size=4),
        st.integers().map(str),
        _huge_ints.map(str),
        st.sampled_from(["0", "101", "-1", "1e3", "²"]),
        _tokens,
    ),
    max_size=3,
)


def _case_variants(word: str) -> st.SearchStrategy[str]:
    flips = st.lists(st.booleans(), min_size=len(word), max_size=len(word))
    return flips.map(
        lambda f: "".join(c.upper() if up else c.lower() for c, up in zip(word, f, strict=True))
    )


# properties


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    route=st.sampled_from(ROUTES),
    ident=_ids,
    body=_bodies,
    query=_queries,
    content_type=st.sampled_from(
        ["application/json", "text/plain", "", "application/x-www-form-urlencoded"]
    ),
    idempotency_key=st.one_of(
        st.none(),
        st.text(  # what a client can put in a header: visible bytes, obs-text, inner spaces
            st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
            max_size=20,
        ).map(lambda t: t.strip().encode("latin-1")),
    ),
)
def test_any_request_gets_2xx_or_a_json_4xx(
    http: httpx.Client,
    evaluation_id: str,
    route: tuple[str, str],
    ident: str,
    body: bytes,
    query: dict[str, str],
    content_type: str,
    idempotency_key: bytes | None,
) -> None:
    method, template = route
    if ident == "job_hostile" and "/evaluations/" in template:
        ident = evaluation_id
    path = template.replace("{id}", quote(ident, safe="%")) + _query(query)
    assume(len(path) < 60_000)  # httpx refuses longer URLs; raw tests send longer heads
    headers: dict[str, Any] = {"Content-Type": content_type} if content_type else {}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    http.request(
        method, path, content=body if method == "POST" else None, headers=headers
    )  # the response hook checks the answer


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    items=st.lists(
        st.one_of(
            _texts,
            _json,
            st.fixed_dictionaries(
                {"name": st.just("custom-x")},
                optional={
                    "dataset": _drive_uris,
                    "num_samples": st.one_of(_texts, _huge_ints, st.integers()),
                    "parameters": st.dictionaries(_texts, _texts, max_size=3),
                },
            ),
        ),
        min_size=0,
        max_size=3,
    ),
    extra=st.dictionaries(
        st.sampled_from(["checkpoint_id", "model_uri"]), st.one_of(_json, _drive_uris), max_size=2
    ),
    key=st.one_of(st.none(), st.uuids().map(str)),
)
def test_near_valid_submissions_are_accepted_or_refused_cleanly(
    http: httpx.Client, items: list[Any], extra: dict[str, Any], key: str | None
) -> None:
    body = {"job_id": "job_hostile", "benchmarks": items, **extra}
    headers = {"Idempotency-Key": key} if key else {}
    # json.dumps escapes lone surrogates as \ud800, as a hostile client would send them
    http.post(f"{API}/evaluations", content=json.dumps(body).encode(), headers=headers)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    route=st.sampled_from([f"{API}/evaluations", f"{API}/evaluations/{{id}}/samples"]),
    token=_tokens,
    size=st.one_of(st.none(), _texts, _huge_ints.map(str)),
)
def test_any_page_token_or_size_is_served_or_refused(
    http: httpx.Client, evaluation_id: str, route: str, token: str, size: str | None
) -> None:
    params = {"page_token": token, **({"page_size": size} if size is not None else {})}
    path = route.replace("{id}", evaluation_id) + _query(params)
    assume(len(path) < 60_000)  # httpx refuses longer URLs
    http.get(path)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=_case_variants("authorization"),
    scheme=_case_variants("bearer"),
    spaces=st.sampled_from([" ", "  ", " \t"]),
)
def test_the_bearer_scheme_and_header_name_match_in_any_case(
    hostile: Any, name: str, scheme: str, spaces: str
) -> None:
    """RFC 7235: the auth scheme is case-insensitive (and header names always are)."""
    forbidden = _secrets_of(hostile)
    right = httpx.get(
        f"{hostile.url}{API}/benchmarks", headers={name: f"{scheme}{spaces}{hostile.api_key}"}
    )
    _check(right.status_code, right.content, forbidden)
    assert right.status_code == 200, right.text
    wrong = httpx.get(f"{hostile.url}{API}/benchmarks", headers={name: f"{scheme} x"})
    _check(wrong.status_code, wrong.content, forbidden)
    assert wrong.status_code == 401


# the audit's findings, one by one


def _submit(dataset: str = "scaidrive://org/eval/qa-hostile.jsonl", **spec: Any) -> dict[str, Any]:
    return {
        "job_id": "job_hostile",
        "benchmarks": [{"name": "custom-x", "dataset": dataset, **spec}],
    }


_SURROGATE = '"\\ud800"'
_FINDINGS: dict[str, tuple[str, str, dict[str, str], bytes, str]] = {
    # name: (method, path, headers, raw body, words of the 400's message)
    "surrogate job_id": (
        "POST", "/evaluations", {}, b'{"job_id": %s, "benchmarks": ["mmlu"]}' % _SURROGATE.encode(), "surrogate"
    ),
    "surrogate model_uri": (
        "POST", "/evaluations", {},
        b'{"job_id": "job_hostile", "model_uri": %s, "benchmarks": ["mmlu"]}' % _SURROGATE.encode(),
        "surrogate",
    ),
    "surrogate dataset": (
        "POST", "/evaluations", {},
        json.dumps(_submit("scaidrive://org/\ud800")).encode(), "surrogate",
    ),
    "surrogate parameter name": (
        "POST", "/evaluations", {},
        json.dumps(_submit(parameters={"\udfff": "x"})).encode(), "surrogate",
    ),
    "surrogate on the jobs route": (
        "POST", "/jobs", {}, b'{"job_id": %s, "model_uri": "m"}' % _SURROGATE.encode(), "surrogate"
    ),
    "surrogate with an Idempotency-Key": (
        "POST", "/evaluations", {"Idempotency-Key": "k-surrogate"},
        b'{"job_id": %s, "benchmarks": ["mmlu"]}' % _SURROGATE.encode(), "surrogate",
    ),
    "JSON nested 5,000 deep": ("POST", "/evaluations", {}, _nest(5000).encode(), "nested"),
    "JSON nested 5,000 deep in a spec": (
        "POST", "/evaluations", {},
        b'{"job_id": "job_hostile", "benchmarks": [%s]}' % _nest(5000).encode(), "nested",
    ),
    "JSON nested 5,000 deep on the jobs route": ("POST", "/jobs", {}, _nest(5000).encode(), "nested"),
    "num_samples --5": ("POST", "/evaluations", {}, json.dumps(_submit(num_samples="--5")).encode(), "num_samples"),
    "num_samples ²": ("POST", "/evaluations", {}, json.dumps(_submit(num_samples="²")).encode(), "num_samples"),
    "num_samples in Arabic-Indic digits": (
        "POST", "/evaluations", {}, json.dumps(_submit(num_samples="\u0661\u0662")).encode(), "num_samples"
    ),
    "num_samples of 5,001 digits": (
        "POST", "/evaluations", {},
        json.dumps(_submit()).replace('"}]}', '", "num_samples": ' + "1" * 5001 + "}]}").encode(),
        "number too long",
    ),
    "num_samples of 5,001 digits as a string": (
        "POST", "/evaluations", {}, json.dumps(_submit(num_samples="1" * 5001)).encode(), "num_samples"
    ),
    "num_samples beyond int64": (
        "POST", "/evaluations", {}, json.dumps(_submit(num_samples=2**63)).encode(), "num_samples"
    ),
    "a path component over 255 bytes": (
        "POST", "/evaluations", {}, json.dumps(_submit("scaidrive://org/" + "a" * 300)).encode(), "255 bytes"
    ),
    "a model path component over 255 bytes": (
        "POST", "/evaluations", {},
        json.dumps({"job_id": "job_hostile", "model_uri": "scaidrive://" + "é" * 200, "benchmarks": ["mmlu"]}).encode(),
        "255 bytes",
    ),
    "thousands of path segments": (
        "POST", "/evaluations", {}, json.dumps(_submit("scaidrive://" + "a/" * 3000 + "x")).encode(), "bytes"
    ),
    "thousands of dot segments": (
        "POST", "/evaluations", {}, json.dumps(_submit("scaidrive://" + "./" * 3000 + "x")).encode(), "does not exist"
    ),
}  # fmt: skip


@pytest.mark.parametrize("finding", list(_FINDINGS))
def test_each_audit_finding_is_a_clear_400(http: httpx.Client, finding: str) -> None:
    method, path, headers, body, words = _FINDINGS[finding]
    headers = {"Content-Type": "application/json", **headers}
    response = http.request(method, API + path, content=body, headers=headers)
    assert words in _message(response, 400)


@pytest.mark.parametrize(
    ("route", "token"),
    [
        ("evaluations", _token(_nest(5000).encode())),
        ("samples", _token(_nest(5000).encode())),
        ("samples", _token([10**30, 1])),
        ("samples", _token([2**63, 0])),
        ("evaluations", _token(["2026-01-01T00:00:00.000000Z", "\ud800"])),
        ("evaluations", _token(b"\xff\xfe")),
    ],
    ids=["deep-list", "deep-samples", "10^30", "2^63", "surrogate", "not-utf8"],
)
def test_foreign_page_tokens_are_a_clear_400(
    http: httpx.Client, evaluation_id: str, route: str, token: str
) -> None:
    path = f"{API}/evaluations" + (f"/{evaluation_id}/samples" if route == "samples" else "")
    assert "page_token" in _message(http.get(path, params={"page_token": token}), 400)


@pytest.mark.parametrize("size", ["²", "\u0661", "1" * 5001, "99999999999999999999", " 5 "])
def test_odd_page_sizes_are_a_clear_400(http: httpx.Client, size: str) -> None:
    response = http.get(f"{API}/evaluations", params={"page_size": size})
    if size.strip() == "5":  # surrounding spaces are tolerated, as int() does
        assert response.status_code == 200
    else:
        assert "page_size" in _message(response, 400)


def test_errors_show_drive_uris_not_server_paths(http: httpx.Client) -> None:
    body = {"job_id": "job_hostile", "model_uri": "scaidrive://org/none", "benchmarks": ["mmlu"]}
    message = _message(http.post(f"{API}/evaluations", json=body), 400)
    assert "scaidrive://org/none" in message


# files that are not regular files


def _special_files(root: Path) -> dict[str, Path]:
    """A FIFO, a character device (/dev/null's numbers) and a socket under the drive."""
    folder = root / "org" / "special"
    folder.mkdir(parents=True, exist_ok=True)
    made = {"fifo": folder / "fifo.jsonl", "device": folder / "device.jsonl"}
    for path in made.values():
        path.unlink(missing_ok=True)
    os.mkfifo(made["fifo"])
    try:
        os.mknod(made["device"], 0o600 | 0o020000, os.makedev(1, 3))  # S_IFCHR
    except PermissionError:  # not root: the FIFO and the socket still cover the rule
        del made["device"]
    made["socket"] = folder / "socket.jsonl"
    made["socket"].unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(made["socket"]))
    sock.close()
    return made


@pytest.mark.parametrize("name", ["custom-x", "mmlu", "humaneval"])
def test_a_fifo_device_or_socket_dataset_is_refused_without_opening_it(
    hostile: Any, http: httpx.Client, name: str
) -> None:
    for kind, path in _special_files(hostile.drive_root).items():
        uri = "scaidrive://" + path.relative_to(hostile.drive_root).as_posix()
        body = {"job_id": "job_hostile", "benchmarks": [{"name": name, "dataset": uri}]}
        message = _message(http.post(f"{API}/evaluations", json=body), 400)
        assert "not a regular file" in message and kind in message.replace("FIFO", "fifo"), message


def test_a_fifo_inside_an_mmlu_folder_is_refused(hostile: Any, http: httpx.Client) -> None:
    folder = hostile.drive_root / "org" / "mmlu-fifo" / "test"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "x_test.csv").unlink(missing_ok=True)
    os.mkfifo(folder / "x_test.csv")
    body = {
        "job_id": "job_hostile",
        "benchmarks": [{"name": "mmlu", "dataset": "scaidrive://org/mmlu-fifo"}],
    }
    assert "not a regular file" in _message(http.post(f"{API}/evaluations", json=body), 400)


def test_a_fifo_model_or_manifest_is_refused(hostile: Any, http: httpx.Client) -> None:
    models = hostile.drive_root / "org" / "models"
    (models / "fifo-manifest").mkdir(parents=True, exist_ok=True)
    for fifo in (models / "fifo-model", models / "fifo-manifest" / "scaimind-model.json"):
        fifo.unlink(missing_ok=True)
        os.mkfifo(fifo)
    for uri, words in [
        ("scaidrive://org/models/fifo-model", "not a regular file"),
        ("scaidrive://org/models/fifo-manifest", "no model at scaidrive://"),
    ]:
        body = {"job_id": "job_hostile", "model_uri": uri, "benchmarks": [hostile.benchmark]}
        assert words in _message(http.post(f"{API}/evaluations", json=body), 400)


# regular expressions written by users


def _regex_evaluation(hostile: Any, http: httpx.Client, tag: str, pattern: str, reply: str) -> Any:
    from scaimind_local.testing import write_custom_dataset, write_model

    root = hostile.drive_root
    model = write_model(root, f"org/models/regex-{tag}", options={"default": reply})
    dataset = write_custom_dataset(
        root, f"org/eval/regex-{tag}.jsonl", [{"prompt": "p", "reference": pattern}]
    )
    spec = {"name": "custom-re", "dataset": dataset, "parameters": {"match": "regex"}}
    body = {"job_id": "job_hostile", "model_uri": model, "benchmarks": [spec]}
    evaluation_id = http.post(f"{API}/evaluations", json=body).json()["data"]["evaluation_id"]
    from scaimind_nb import Client

    with Client(hostile.url, hostile.api_key) as client:
        return client.wait(evaluation_id, timeout=60, poll_interval=0.05, max_poll_interval=0.2)


def test_a_backtracking_regex_fails_its_benchmark_with_the_reason(
    hostile: Any, http: httpx.Client
) -> None:
    evaluation = _regex_evaluation(hostile, http, "slow", r"(a|aa)+$", "a" * 40 + "b")
    assert evaluation.status == "FAILED"
    assert f"took longer than {REGEX_TIMEOUT:g} s" in (evaluation.error or "")
    assert "line 1" in (evaluation.error or "")
    assert http.get("/healthz").status_code == 200


def test_a_regex_match_lets_other_threads_run() -> None:
    """The match releases the GIL: with a switch interval of 1,000 s, a thread holding it
    through a match would run to its end before this one got to look."""
    from scaimind_local import BenchmarkSpec, InvalidBenchmark
    from scaimind_local._benchmarks.custom import _Options

    options = _Options(BenchmarkSpec("custom-re", "d", None, {"match": "regex"}), 1.0)
    started, done, outcome = threading.Event(), threading.Event(), []

    def match() -> None:
        started.set()
        try:
            options.correct("a" * 40 + "b", [r"(a|aa)+$"], "line 1")
        except InvalidBenchmark as exc:
            outcome.append(str(exc))
        done.set()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1000)
    try:
        thread = threading.Thread(target=match)
        thread.start()
        started.wait()
        assert not done.is_set(), "the match held the GIL to its end"
        thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert outcome and "took longer than 1 s" in outcome[0]


def test_the_audits_regex_no_longer_freezes_anything(hostile: Any, http: httpx.Client) -> None:
    """`^(.*.*)*X` on 18 characters held /healthz for 34 s under `re`."""
    evaluation = _regex_evaluation(hostile, http, "audit", r"^(.*.*)*X", "a" * 18)
    assert evaluation.status == "COMPLETED"
    assert evaluation.score("custom-re") == 0.0


# slow and oversized requests


def test_a_body_that_never_arrives_gets_a_408_and_the_connection_closes(hostile: Any) -> None:
    head = (
        f"POST {API}/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {hostile.api_key}\r\n"
        "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    )
    status, headers, body = raw(hostile, head.encode(), then=b'{"job_id": ')
    assert status == 408 and b"connection: close" in headers
    assert f"within {REQUEST_TIMEOUT:g} s" in json.loads(body)["error"]["message"]


@pytest.mark.parametrize(
    "start", [b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1", b""], ids=["partial", "silent"]
)
def test_a_head_that_never_completes_gets_a_408(hostile: Any, start: bytes) -> None:
    status, headers, body = raw(hostile, start)
    assert status == 408 and b"connection: close" in headers
    assert json.loads(body)["error"]["code"] == "REQUEST_TIMEOUT"


@pytest.mark.parametrize(
    "head",
    [
        b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 3_000_000 + b"\r\n\r\n",
        b"GET /healthz?" + b"q" * 100_000 + b" HTTP/1.1\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\n" + b"X-Many: 1\r\n" * 5000 + b"\r\n",
    ],
    ids=["20-kB-header", "3-MB-header", "100-kB-url", "5000-headers"],
)
def test_oversized_heads_get_a_431(hostile: Any, head: bytes) -> None:
    status, _, body = raw(hostile, head)
    assert status == 431
    assert json.loads(body)["error"]["code"] == "HEADERS_TOO_LARGE"


def test_a_large_body_after_small_headers_is_not_a_431(http: httpx.Client) -> None:
    body = {"job_id": "j", "model_uri": "m" * 500_000}
    assert http.post(f"{API}/jobs", json=body).status_code == 200


@pytest.mark.parametrize(
    "request_bytes",
    [
        "GET /heal\xe9 HTTP/1.1\r\nHost: x\r\n\r\n".encode("latin-1"),
        b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: \xc2\xb2\r\n\r\n",
        b"NOT HTTP\r\n\r\n",
    ],
    ids=["non-ascii-path", "content-length-superscript", "garbage"],
)
def test_unparseable_http_gets_a_400_in_the_error_shape(hostile: Any, request_bytes: bytes) -> None:
    status, _, body = raw(hostile, request_bytes)
    assert status == 400
    assert "malformed HTTP request" in json.loads(body)["error"]["message"]


@pytest.mark.parametrize("chunked", [False, True])
def test_oversized_body_is_refused_with_413(http: httpx.Client, chunked: bool) -> None:
    payload = b'{"job_id": "' + b"x" * (2 << 20) + b'"}'
    content: Any = (
        iter([payload[i : i + 65536] for i in range(0, len(payload), 65536)])
        if chunked
        else payload
    )
    response = http.post(f"{API}/evaluations", content=content)
    assert "larger than" in _message(response, 413)


def test_oversized_dataset_is_refused_at_submit(hostile: Any, http: httpx.Client) -> None:
    from scaimind_local.testing import write_custom_dataset

    rows = [{"prompt": f"q{i}", "reference": "x" * 100} for i in range(100)]
    dataset = write_custom_dataset(hostile.drive_root, "org/eval/huge.jsonl", rows)
    body = {"job_id": "job_hostile", "benchmarks": [{"name": "custom-huge", "dataset": dataset}]}
    assert f"limit of {DATASET_LIMIT} bytes" in _message(
        http.post(f"{API}/evaluations", json=body), 400
    )


def test_drive_escape_in_a_submission_is_refused(http: httpx.Client) -> None:
    for dataset in (
        "scaidrive://org/%2e%2e/%2e%2e/etc/passwd",
        "scaidrive://org/a%00b",
        "file:///etc/passwd",
    ):
        body = {"job_id": "job_hostile", "benchmarks": [{"name": "custom-x", "dataset": dataset}]}
        assert _message(http.post(f"{API}/evaluations", json=body), 400)


def test_405_names_the_allowed_methods(http: httpx.Client) -> None:
    """Regression (found by schemathesis): a 405 must carry the Allow header (RFC 9110)."""
    response = http.request("DELETE", f"{API}/benchmarks")
    assert response.status_code == 405
    assert "GET" in response.headers["allow"]
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    both = http.request("DELETE", f"{API}/evaluations")
    assert {"GET", "POST"} <= {m.strip() for m in both.headers["allow"].split(",")}


# a slow submit-time check holds no other request


class _GatedRunner:
    """A benchmark whose submit-time check waits until the test opens the gate."""

    name = "gated"

    def __init__(self) -> None:
        self.entered, self.gate = threading.Event(), threading.Event()

    def validate(self, spec: Any, ctx: Any) -> None:
        self.entered.set()
        assert self.gate.wait(60), "the test never opened the gate"

    def run(self, spec: Any, model: Any, ctx: Any) -> Any:
        from scaimind_local import RunnerResult

        return RunnerResult(metrics={"score": 1.0}, num_samples=1)


def test_a_slow_submit_time_check_stalls_no_other_request(
    tmp_path: Path, scaimind_api_key: str
) -> None:
    from scaimind_local import LocalCoordinator, hookimpl

    runner = _GatedRunner()

    class Plugin:
        @hookimpl
        def scaimind_local_benchmarks(self) -> list[Any]:
            return [runner]

    with LocalCoordinator(
        tmp_path / "db.sqlite", tmp_path / "drive", api_key=scaimind_api_key, plugins=[Plugin()]
    ) as coordinator:
        model_uri, _ = scored_model(coordinator.drive_root)
        coordinator.register_job("job_gated", model_uri)
        headers = {"Authorization": f"Bearer {coordinator.api_key}"}
        answers: list[httpx.Response] = []
        body = {"job_id": "job_gated", "benchmarks": ["gated"]}
        submitter = threading.Thread(
            target=lambda: answers.append(
                httpx.post(
                    f"{coordinator.url}{API}/evaluations", json=body, headers=headers, timeout=60
                )
            )
        )
        submitter.start()
        try:
            assert runner.entered.wait(30), "the submit never reached its check"
            # the check is in progress, and stays so until the gate opens: others are served
            assert httpx.get(f"{coordinator.url}/healthz", timeout=10).status_code == 200
            listed = httpx.get(f"{coordinator.url}{API}/benchmarks", headers=headers, timeout=10)
            assert "gated" in listed.json()["data"]["benchmarks"]
            assert not answers, "the submit answered before its check finished"
        finally:
            runner.gate.set()
            submitter.join(60)
        assert answers[0].status_code == 200, answers[0].text


# schemathesis, with and without the key

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
    generated = re.search(r"(\d+) generated", proc.stdout)
    TALLY["tried"] += int(generated.group(1)) if generated else 0  # test cases, a request or more
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert hostile.api_key not in proc.stdout + proc.stderr
