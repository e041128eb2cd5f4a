"""Queue order, cancel (queued at once, running at the next sample) and pagination."""

from __future__ import annotations

import httpx

from scaimind_local import LocalCoordinator
from scaimind_local.testing import write_custom_dataset, write_model

from ._util import client_for, submit, wait_for

ROWS = [{"prompt": f"q{i}", "reference": f"a{i}"} for i in range(20)]


def _setup(coord: LocalCoordinator, delay: float) -> tuple[str, dict[str, str]]:
    model = write_model(coord.drive_root, "org/models/m", options={"delay": delay})
    dataset = write_custom_dataset(coord.drive_root, "org/eval/d.jsonl", ROWS)
    coord.register_job("job_q", model)
    return "job_q", {"name": "custom-d", "dataset": dataset}


def test_cancel_queued_at_once_and_running_at_a_sample_boundary(
    fresh_coordinator: LocalCoordinator, fresh_api: httpx.Client
) -> None:
    job_id, bench = _setup(fresh_coordinator, delay=0.05)
    ids = [submit(fresh_api, job_id, bench).json()["data"]["evaluation_id"] for _ in range(3)]
    # two workers: the first two run in submission order, the third waits
    for eid in ids[:2]:
        wait_for(fresh_api, eid, lambda r: r["status"] == "RUNNING")
    third = fresh_api.get(f"/evaluations/{ids[2]}").json()["data"]
    assert third["status"] == "QUEUED"

    cancelled = fresh_api.post(f"/evaluations/{ids[2]}/cancel").json()["data"]
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["error"]["code"] == "CANCELLED"
    assert "started_at" not in cancelled

    wait_for(fresh_api, ids[0], lambda r: int(r["progress"][0]["completed"]) >= 2)
    resp = fresh_api.post(f"/evaluations/{ids[0]}/cancel").json()["data"]
    assert resp["status"] == "RUNNING" and resp["cancel_requested"] is True
    done = wait_for(fresh_api, ids[0], timeout=5)
    assert done["status"] == "CANCELLED"
    assert int(done["progress"][0]["completed"]) < 20
    assert done["results"] == []
    # the other one is untouched, and a cancelled one never runs again
    assert wait_for(fresh_api, ids[1])["status"] == "COMPLETED"
    assert fresh_api.get(f"/evaluations/{ids[2]}").json()["data"]["status"] == "CANCELLED"


def test_pagination_newest_first_stable_while_new_evaluations_arrive(
    fresh_coordinator: LocalCoordinator, fresh_api: httpx.Client
) -> None:
    job_id, bench = _setup(fresh_coordinator, delay=0)
    bench["num_samples"] = 1  # type: ignore[assignment]
    first = [submit(fresh_api, job_id, bench).json()["data"]["evaluation_id"] for _ in range(25)]
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        params = {"page_size": "10", **({"page_token": token} if token else {})}
        page = fresh_api.get("/evaluations", params=params).json()["data"]
        pages += 1
        seen += [item["job_id"] for item in page["evaluations"]]
        if pages == 1:  # new evaluations arrive between pages
            for _ in range(4):
                submit(fresh_api, job_id, bench)
        token = page["next_page_token"]
        if not token:
            break
    assert pages == 3
    assert seen == list(reversed(first))
    assert page["total_count"] == "29"
    item = fresh_api.get("/evaluations", params={"page_size": "1"}).json()["data"]["evaluations"][0]
    assert item["type"] == "evaluation"
    assert item["labels"] == {"type": "evaluation", "parent_job_id": job_id}
    assert item["name"] == f"evaluation of {job_id}"
    assert set(item) == {"job_id", "name", "type", "labels", "status", "created_at", "updated_at"}


def test_workers_take_queued_evaluations_in_submission_order(
    tmp_path, scaimind_api_key: str
) -> None:
    with LocalCoordinator(
        tmp_path / "db", tmp_path / "drive", scaimind_api_key, workers=1
    ) as coord:
        job_id, bench = _setup(coord, delay=0.005)
        with client_for(coord) as client:
            ids = [submit(client, job_id, bench).json()["data"]["evaluation_id"] for _ in range(4)]
            records = [wait_for(client, eid) for eid in ids]
    starts = [r["started_at"] for r in records]
    assert starts == sorted(starts)
    assert all(r["status"] == "COMPLETED" for r in records)
