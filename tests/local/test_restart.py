"""A `scaimind-local serve` killed with SIGKILL mid-run loses nothing once restarted."""

from __future__ import annotations

import json
import secrets
import signal
import sqlite3
from pathlib import Path

import httpx
import pytest

from scaimind_local import LocalCoordinator
from scaimind_local.testing import write_custom_dataset, write_model

from ._util import API, client_for, serve, submit, wait_for

ROWS = [{"prompt": f"q{i}", "reference": f"a{i}"} for i in range(20)]


@pytest.mark.slow
def test_sigkill_mid_run_then_restart_completes_the_running_evaluation(tmp_path: Path) -> None:
    key = "sk-restart-" + secrets.token_hex(8)
    answers = {f"q{i}": f"a{i}" for i in range(10)}
    model = write_model(
        tmp_path / "drive", "org/models/m", options={"answers": answers, "delay": 0.1}
    )
    dataset = write_custom_dataset(tmp_path / "drive", "org/eval/d.jsonl", ROWS)
    headers = {"Authorization": f"Bearer {key}"}

    proc, url = serve(tmp_path, key, "--workers", "1")
    try:
        with httpx.Client(base_url=url + API, headers=headers, timeout=30) as api:
            api.post("/jobs", json={"job_id": "job_r", "model_uri": model}).raise_for_status()
            quick = submit(api, "job_r", {"name": "custom-d", "dataset": dataset, "num_samples": 2})
            quick_id = quick.json()["data"]["evaluation_id"]
            quick_done = wait_for(api, quick_id)
            specs = [
                {"name": "custom-first", "dataset": dataset, "num_samples": 3},
                {"name": "custom-d", "dataset": dataset},
            ]
            slow_id = submit(api, "job_r", *specs).json()["data"]["evaluation_id"]
            queued_id = submit(api, "job_r", specs[0]).json()["data"]["evaluation_id"]
            wait_for(api, slow_id, lambda r: int(r["progress"][1]["completed"]) >= 3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    proc, url = serve(tmp_path, key, "--workers", "1")
    try:
        with httpx.Client(base_url=url + API, headers=headers, timeout=30) as api:
            assert api.get(f"/evaluations/{quick_id}").json()["data"] == quick_done
            done = wait_for(api, slow_id)
            assert done["status"] == "COMPLETED", done
            assert [r["score"] for r in done["results"]] == [1.0, 0.5]
            assert [r["num_samples"] for r in done["results"]] == ["3", "20"]
            assert wait_for(api, queued_id)["status"] == "COMPLETED"
            samples = api.get(f"/evaluations/{slow_id}/samples", params={"page_size": 100})
            assert len(samples.json()["data"]["samples"]) == 23
            listing = api.get("/evaluations").json()["data"]
            assert [e["job_id"] for e in listing["evaluations"]] == [queued_id, slow_id, quick_id]
    finally:
        proc.terminate()
        proc.wait(10)


def test_graceful_stop_mid_run_is_quick_and_resumes_on_restart(
    tmp_path: Path, scaimind_api_key: str
) -> None:
    args = (tmp_path / "db.sqlite", tmp_path / "drive", scaimind_api_key)
    answers = {r["prompt"]: r["reference"] for r in ROWS}
    with LocalCoordinator(*args) as coord:
        model = write_model(coord.drive_root, "org/m", options={"answers": answers, "delay": 0.2})
        dataset = write_custom_dataset(coord.drive_root, "org/d.jsonl", ROWS)
        coord.register_job("job_g", model)
        with client_for(coord) as api:
            eid = submit(api, "job_g", {"name": "custom-d", "dataset": dataset}).json()["data"]
            wait_for(api, eid["evaluation_id"], lambda r: r["status"] == "RUNNING")
    # the stop did not wait for the run (20 samples at 0.2 s): the worker left at a sample
    # boundary, the evaluation stays RUNNING with its progress, to be requeued at the next start
    with sqlite3.connect(tmp_path / "db.sqlite") as conn:
        status, progress = conn.execute(
            "SELECT status, progress FROM evaluations WHERE id = ?", (eid["evaluation_id"],)
        ).fetchone()
    assert status == "RUNNING"
    assert json.loads(progress)[0]["completed"] < len(ROWS)
    # the same model and data: their digests are checked again when the run resumes
    with LocalCoordinator(*args) as coord, client_for(coord) as api:
        done = wait_for(api, eid["evaluation_id"])
    assert done["status"] == "COMPLETED"
    assert done["results"][0]["score"] == 1.0
