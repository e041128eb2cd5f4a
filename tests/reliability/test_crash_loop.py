"""A poison pill: an evaluation that takes the coordinator down each time it runs ends FAILED
after MAX_ATTEMPTS starts, with the reason, while the rest of the queue completes."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from scaimind_local._store import MAX_ATTEMPTS, Store
from scaimind_local.testing import write_model

from ._harness import EXPECTED_SCORE, ServerProcess, scored_model, wait_until

API = "/v1/modules/scaimind"


def _get(server: ServerProcess, eval_id: str) -> dict:
    request = urllib.request.Request(
        f"{server.url}{API}/evaluations/{eval_id}",
        headers={"Authorization": f"Bearer {server.api_key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        data: dict = json.loads(resp.read())["data"]
        return data


def _status(server: ServerProcess, eval_id: str) -> str | None:
    """The evaluation's status, or None while the coordinator is not answering."""
    try:
        return str(_get(server, eval_id)["status"])
    except OSError:
        return None


@pytest.mark.slow
def test_a_crash_looping_evaluation_ends_failed_and_the_queue_goes_on(
    tmp_path: Path, scaimind_api_key: str
) -> None:
    server = ServerProcess(tmp_path, scaimind_api_key, workers=1)
    healthy_uri, benchmark = scored_model(server.drive_root)
    poison_uri = write_model(
        server.drive_root, "org/models/poison", "tests.reliability._poison:CoordinatorKiller"
    )
    # queued before the first start, as a previous process would have left them (no race with
    # a submit's answer): the poison pill first, so it is the first to run
    store = Store(server.db_path)
    spec = {"num_samples": None, "parameters": {}, **benchmark}
    poison = store.create_evaluation("job_poison", poison_uri, "", [spec])["id"]
    healthy = store.create_evaluation("job_healthy", healthy_uri, "", [spec])["id"]
    store.close()
    deaths = 0
    try:
        while True:  # a supervisor: (re)start the coordinator whenever it dies
            assert deaths <= MAX_ATTEMPTS, "the poison pill was retried past MAX_ATTEMPTS"
            try:
                server.start()
            except RuntimeError:  # it died before it answered /healthz
                deaths += 1
                continue
            proc = server.proc
            assert proc is not None
            wait_until(
                lambda p=proc: p.poll() is not None or _status(server, poison) == "FAILED",  # type: ignore[misc]
                120,
                "the coordinator's death or the poison pill's failure",
            )
            if proc.poll() is None:
                break
            deaths += 1
        record = _get(server, poison)
        wait_until(lambda: _status(server, healthy) == "COMPLETED", 60, "the healthy run")
        assert server.healthy()  # and it stays up: nothing runs the poison pill again
        healthy_record = _get(server, healthy)
    finally:
        server.stop()
    assert deaths == MAX_ATTEMPTS
    assert record["status"] == "FAILED" and record["error"]["code"] == "INTERRUPTED"
    assert f"stopped {MAX_ATTEMPTS} times" in record["error"]["message"]
    assert healthy_record["results"][0]["score"] == EXPECTED_SCORE


def test_graceful_stops_use_up_no_attempt_and_crashes_requeue_behind_fresh_work(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "db.sqlite")
    spec = [{"name": "custom-qa", "dataset": None, "num_samples": None, "parameters": {}}]
    first = store.create_evaluation("job", "scaidrive://m", "", spec)["id"]
    for _ in range(MAX_ATTEMPTS + 2):  # stopped gracefully, restarted, again and again
        claimed = store.claim_next()
        assert claimed is not None and claimed["id"] == first
        store.release(first)
        assert store.requeue_running() == (1, 0)
    second = store.create_evaluation("job", "scaidrive://m", "", spec)["id"]
    assert store.claim_next()["id"] == first  # type: ignore[index]  # still first in line
    assert store.requeue_running() == (1, 0)  # a crash: that one counts
    assert store.claim_next()["id"] == second  # type: ignore[index]  # fresh work goes first
    assert store.claim_next()["id"] == first  # type: ignore[index]
    store.close()
