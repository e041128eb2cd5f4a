"""The stored rendering that GET serves stays equal to the row after every kind of change."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scaimind_local._app import RecordReader
from scaimind_local._drive import Drive
from scaimind_local._render import dump_json, render_evaluation
from scaimind_local._store import Store

SPEC = [{"name": "custom-qa", "dataset": "scaidrive://org/eval/qa.jsonl", "num_samples": 5}]
RESULT = {
    "benchmark": "custom-qa",
    "score": 0.6,
    "metrics": {"exact_match": 0.6, "odd": float("nan")},
    "stderr": {"exact_match": 0.24},
    "num_samples": 5,
    "extra": {"spec_index": 0},
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "render.sqlite")
    try:
        yield s
    finally:
        s.close()


def stored(store: Store, eval_id: str) -> dict[str, Any]:
    """The record GET would serve, after checking it is a fresh rendering of the row's columns."""
    rendered = store.get_rendered(eval_id)
    row = store.get_evaluation(eval_id)
    assert rendered is not None and row is not None
    assert rendered == dump_json(render_evaluation(row))
    record: dict[str, Any] = json.loads(rendered)
    return record


def _running(store: Store) -> str:
    eval_id = store.create_evaluation("job", "scaidrive://org/m", "ck", SPEC)["id"]
    claimed = store.claim_next()
    assert claimed is not None and claimed["id"] == eval_id
    return eval_id


def _progress(store: Store, eval_id: str) -> None:
    store.set_progress(eval_id, [{"benchmark": "custom-qa", "completed": 3, "total": 5}])


def _result(store: Store, eval_id: str) -> None:
    progress = [{"benchmark": "custom-qa", "completed": 5, "total": 5}]
    store.add_result(eval_id, [RESULT], progress, 0, "custom-qa", [{"ok": True}])


# (change applied to a RUNNING evaluation, what the served record must then show)
CHANGES: dict[str, tuple[Callable[[Store, str], Any], Callable[[dict[str, Any]], bool]]] = {
    "progress": (_progress, lambda r: r["progress"][0]["completed"] == "3"),
    "result": (
        _result,
        lambda r: (
            r["results"][0]["num_samples"] == "5"
            and r["results"][0]["metrics"]["odd"] == "NaN"
            and r["progress"][0]["completed"] == "5"
        ),
    ),
    "cancel requested": (
        lambda s, e: s.request_cancel(e),
        lambda r: r["cancel_requested"] is True and r["status"] == "RUNNING",
    ),
    "completed": (
        lambda s, e: s.finish(e, "COMPLETED"),
        lambda r: r["status"] == "COMPLETED" and "completed_at" in r,
    ),
    "failed": (
        lambda s, e: s.finish(e, "FAILED", {"code": "BENCHMARK_FAILED", "message": "line 3"}),
        lambda r: r["status"] == "FAILED" and r["error"]["message"] == "line 3",
    ),
    "requeued after a restart": (
        lambda s, e: s.requeue_running(),
        lambda r: r["status"] == "QUEUED" and "started_at" in r,
    ),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_each_change_of_a_running_evaluation_is_served(store: Store, change: str) -> None:
    eval_id = _running(store)
    before = stored(store, eval_id)
    assert before["status"] == "RUNNING" and before["progress"][0]["completed"] == "0"
    apply, shows = CHANGES[change]
    apply(store, eval_id)
    after = stored(store, eval_id)
    assert shows(after), after
    assert after["updated_at"] > before["updated_at"]


def test_create_and_cancel_of_a_queued_evaluation_are_served(store: Store) -> None:
    created = store.create_evaluation("job", "scaidrive://org/m", "", SPEC)
    assert json.loads(created["rendered"]) == stored(store, created["id"])
    assert stored(store, created["id"])["status"] == "QUEUED"
    cancelled = store.request_cancel(created["id"])
    assert cancelled is not None
    record = stored(store, created["id"])
    assert json.loads(cancelled["rendered"]) == record
    assert record["status"] == "CANCELLED" and record["error"]["code"] == "CANCELLED"


def test_a_change_touches_only_its_own_rendering(store: Store) -> None:
    running = _running(store)
    other = store.create_evaluation("job", "scaidrive://org/m", "", SPEC)["id"]
    kept = store.get_rendered(other)
    for change in ("progress", "result", "completed"):
        CHANGES[change][0](store, running)
        assert store.get_rendered(other) == kept


def test_a_file_without_renderings_is_rendered_on_open(tmp_path: Path) -> None:
    """A database written before the stored rendering existed serves the same records."""
    db = tmp_path / "old.sqlite"
    s = Store(db)
    eval_id = _running(s)
    _result(s, eval_id)
    expected = stored(s, eval_id)
    s.close()
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE evaluations DROP COLUMN rendered")
    reopened = Store(db)
    try:
        assert stored(reopened, eval_id) == expected
    finally:
        reopened.close()


def test_stored_records_show_drive_uris_not_server_paths(tmp_path: Path) -> None:
    """What runners and errors write (mmlu's `extra.dataset`, a failure message) is cleaned."""
    drive = Drive(tmp_path / "drive", private={"db": tmp_path})
    s = Store(tmp_path / "paths.sqlite", hide=drive.hide_all)
    try:
        eval_id = _running(s)
        extra = {"spec_index": 0, "dataset": f"{drive.root}/org/mmlu", "n": 3}
        progress = [{"benchmark": "custom-qa", "completed": 5, "total": 5}]
        s.add_result(eval_id, [{**RESULT, "extra": extra}], progress, 0, "custom-qa", [])
        message = f"mmlu: cannot read {drive.root}/org/mmlu/x_test.csv (see {tmp_path}/log)"
        s.finish(eval_id, "FAILED", {"code": "BENCHMARK_FAILED", "message": message})
        rendered = s.get_rendered(eval_id)
        assert rendered is not None and str(tmp_path).encode() not in rendered
        record = json.loads(rendered)
        assert record["results"][0]["extra"] == {**extra, "dataset": "scaidrive://org/mmlu"}
        assert record["error"]["message"] == (
            "mmlu: cannot read scaidrive://org/mmlu/x_test.csv (see <db>/log)"
        )
        row = s.get_evaluation(eval_id)  # the row keeps what was written; only output is cleaned
        assert row is not None and row["error"]["message"] == message
    finally:
        s.close()


def test_get_serves_the_stored_record_in_its_envelope(scored_setup: Any, api: httpx.Client) -> None:
    _coord, job_id, model_uri, benchmark, _ = scored_setup
    body = {"job_id": job_id, "model_uri": model_uri, "benchmarks": [benchmark]}
    submitted = api.post("/evaluations", json=body).json()["data"]
    answer = api.get(f"/evaluations/{submitted['evaluation_id']}")
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["content-length"] == str(len(answer.content))
    data = answer.json()["data"]
    assert data["evaluation_id"] == submitted["evaluation_id"]
    assert data["created_at"] == submitted["created_at"]
    missing = api.get("/evaluations/eval_missing")
    assert missing.status_code == 404 and "eval_missing" in missing.json()["error"]["message"]


def test_gets_queued_together_are_read_with_one_select(store: Store) -> None:
    """The reader thread answers every GET queued since its last wake-up with one query."""
    ids = [store.create_evaluation("job", "scaidrive://org/m", "", SPEC)["id"] for _ in range(3)]
    asked: list[list[str]] = []
    read = store.get_rendered_many

    def counting(eval_ids: list[str]) -> dict[str, bytes]:
        asked.append(sorted(eval_ids))
        return read(eval_ids)

    store.get_rendered_many = counting  # type: ignore[method-assign]
    reader = RecordReader(store)

    async def gets() -> list[bytes | None]:
        pending = [asyncio.ensure_future(reader.rendered(i)) for i in [*ids, "eval_missing"]]
        await asyncio.sleep(0)  # one turn of the loop: every GET has queued its id
        reader.start()
        return list(await asyncio.gather(*pending))

    try:
        answers = asyncio.run(gets())
    finally:
        reader.stop()
    assert asked == [sorted([*ids, "eval_missing"])]
    assert answers == [read([i])[i] for i in ids] + [None]
