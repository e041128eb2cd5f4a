"""Idempotency-Key on submit: replay, body mismatch, concurrency, restart and the 24 h window."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from scaimind_local import LocalCoordinator
from scaimind_local._store import KeyInUse, Store
from scaimind_nb import Client

from ._util import client_for


def _body(scored_setup: Any, **extra: Any) -> dict[str, Any]:
    _coord, job_id, model_uri, benchmark, _ = scored_setup
    return {"job_id": job_id, "model_uri": model_uri, "benchmarks": [benchmark], **extra}


def _post(api: httpx.Client, body: dict[str, Any], key: str | None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return api.post("/evaluations", json=body, headers=headers)


def _count(api: httpx.Client) -> int:
    return int(api.get("/evaluations", params={"page_size": 1}).json()["data"]["total_count"])


def test_same_key_same_body_replays_the_first_evaluation(scored_setup, api: httpx.Client) -> None:
    key = str(uuid.uuid4())
    body = _body(scored_setup, checkpoint_id="ckpt-1")
    first = _post(api, body, key)
    assert first.status_code == 200, first.text
    assert first.headers["idempotency-key"] == key
    assert "idempotent-replayed" not in first.headers
    before = _count(api)
    # the same JSON with its keys in another order is the same body
    again = _post(api, dict(reversed(list(body.items()))), key)
    assert again.status_code == first.status_code
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["idempotency-key"] == key
    replayed, created = again.json()["data"], first.json()["data"]
    assert replayed["evaluation_id"] == created["evaluation_id"]
    assert {k: replayed[k] for k in ("job_id", "model_uri", "checkpoint_id", "benchmarks")} == {
        k: created[k] for k in ("job_id", "model_uri", "checkpoint_id", "benchmarks")
    }
    assert _count(api) == before


def test_without_a_key_every_submit_creates_an_evaluation(scored_setup, api: httpx.Client) -> None:
    body = _body(scored_setup)
    ids = {_post(api, body, None).json()["data"]["evaluation_id"] for _ in range(2)}
    assert len(ids) == 2


def test_same_key_different_body_is_422(scored_setup, api: httpx.Client) -> None:
    key = str(uuid.uuid4())
    first = _post(api, _body(scored_setup), key).json()["data"]
    before = _count(api)
    resp = _post(api, _body(scored_setup, checkpoint_id="other"), key)
    assert resp.status_code == 422
    error = resp.json()["error"]
    assert error["code"] == "UNPROCESSABLE_ENTITY"
    assert key in error["message"] and first["evaluation_id"] in error["message"]
    assert "different request body" in error["message"] and "new key" in error["message"]
    assert _count(api) == before


@pytest.mark.parametrize("key", [b"", b"x" * 256, b"has space", "caf\u00e9".encode()])
def test_malformed_key_is_400_before_anything_is_created(
    scored_setup, api: httpx.Client, key: bytes
) -> None:
    before = _count(api)
    resp = api.post(
        "/evaluations",
        json=_body(scored_setup),
        headers={"Idempotency-Key": key},
    )
    assert resp.status_code == 400
    assert "Idempotency-Key must be 1 to 255 visible ASCII" in resp.json()["error"]["message"]
    assert _count(api) == before


def test_a_refused_submit_does_not_consume_its_key(scored_setup, api: httpx.Client) -> None:
    key = str(uuid.uuid4())
    bad = _post(api, _body(scored_setup, job_id="job_missing_" + key[:8]), key)
    assert bad.status_code == 404
    ok = _post(api, _body(scored_setup), key)
    assert ok.status_code == 200 and "idempotent-replayed" not in ok.headers


def test_concurrent_submits_with_one_key_create_one_evaluation(
    scored_setup, api: httpx.Client
) -> None:
    coord = scored_setup.coordinator
    key = str(uuid.uuid4())
    body = _body(scored_setup)
    before = _count(api)
    barrier = threading.Barrier(8)
    answers: list[httpx.Response] = []

    def post() -> None:
        with client_for(coord) as own:
            barrier.wait()
            answers.append(_post(own, body, key))

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [r.status_code for r in answers] == [200] * 8
    assert len({r.json()["data"]["evaluation_id"] for r in answers}) == 1
    assert sorted(r.headers.get("idempotent-replayed", "") for r in answers) == [""] + ["true"] * 7
    assert _count(api) == before + 1


def test_two_connections_racing_on_one_key_write_one_evaluation(tmp_path: Path) -> None:
    """The unique key, not the event loop, is what serialises: two stores on one file."""
    db = tmp_path / "race.sqlite"
    Store(db).close()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def create() -> None:
        store = Store(db)
        barrier.wait()
        try:
            store.create_evaluation("job", "m", "", [{"name": "custom-x"}], ("k-race", "fp"))
            outcomes.append("created")
        except KeyInUse:
            outcomes.append("key in use")
        finally:
            store.close()

    threads = [threading.Thread(target=create) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["created", "key in use"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == 1
        assert conn.execute("SELECT COUNT(*) FROM idempotency_keys").fetchone()[0] == 1


def _setup(coord: LocalCoordinator) -> dict[str, Any]:
    from scaimind_local.testing import write_custom_dataset, write_model

    model = write_model(coord.drive_root, "org/models/m", options={"answers": {"q": "a"}})
    data = write_custom_dataset(
        coord.drive_root, "org/eval/d.jsonl", [{"prompt": "q", "reference": "a"}]
    )
    coord.register_job("job_i", model)
    return {"job_id": "job_i", "benchmarks": [{"name": "custom-d", "dataset": data}]}


def test_keys_survive_a_restart(tmp_path: Path, scaimind_api_key: str) -> None:
    db, drive = tmp_path / "db.sqlite", tmp_path / "drive"
    key = str(uuid.uuid4())
    with LocalCoordinator(db, drive, api_key=scaimind_api_key) as coord:
        body = _setup(coord)
        with client_for(coord) as api:
            first = _post(api, body, key).json()["data"]["evaluation_id"]
    with LocalCoordinator(db, drive, api_key=scaimind_api_key) as coord, client_for(coord) as api:
        again = _post(api, body, key)
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json()["data"]["evaluation_id"] == first
        assert _post(api, {**body, "checkpoint_id": "x"}, key).status_code == 422
        assert _count(api) == 1


def test_a_key_older_than_24_hours_may_be_reused(fresh_coordinator: LocalCoordinator) -> None:
    coord = fresh_coordinator
    body = _setup(coord)
    key = str(uuid.uuid4())
    with client_for(coord) as api:
        first = _post(api, body, key).json()["data"]["evaluation_id"]
        old = (datetime.now(UTC) - timedelta(hours=24, minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        with sqlite3.connect(coord.db_path) as conn:
            conn.execute("UPDATE idempotency_keys SET created_at=? WHERE key=?", (old, key))
        reused = _post(api, {**body, "checkpoint_id": "new"}, key)
        assert reused.status_code == 200 and "idempotent-replayed" not in reused.headers
        assert reused.json()["data"]["evaluation_id"] != first
        assert _post(api, {**body, "checkpoint_id": "new"}, key).headers["idempotent-replayed"]
    with sqlite3.connect(coord.db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM idempotency_keys").fetchone()[0] == 1


def test_client_resends_under_its_key_after_a_lost_answer(
    fresh_coordinator: LocalCoordinator,
) -> None:
    """The real client, its answer lost after the server created the evaluation: no duplicate."""
    coord = fresh_coordinator
    body = _setup(coord)
    model = coord.request("GET", "/v1/modules/scaimind/jobs/job_i")["data"]["model_uri"]
    seen: list[httpx.Request] = []
    lose_next_post = [False]
    real = httpx.HTTPTransport()

    class LosingTransport(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request)
            response = real.handle_request(request)
            if request.method == "POST" and lose_next_post[0]:
                lose_next_post[0] = False
                response.read()
                raise httpx.ReadTimeout("answer lost", request=request)
            return response

    with Client(coord.url, coord.api_key, transport=LosingTransport()) as client:
        first = client.submit("job_i", model, body["benchmarks"])  # answer echoes the key
        seen.clear()
        lose_next_post[0] = True
        second = client.submit("job_i", model, body["benchmarks"], checkpoint_id="c2")
    assert second.evaluation_id != first.evaluation_id and second.checkpoint_id == "c2"
    assert [r.method for r in seen] == ["POST", "POST"]  # re-sent at once, no listing lookup
    assert seen[0].headers["idempotency-key"] == seen[1].headers["idempotency-key"]
    with client_for(coord) as api:
        assert _count(api) == 2
