"""Submit → QUEUED → RUNNING → COMPLETED against a real coordinator, with exact scores."""

from __future__ import annotations

import hashlib
import math

import httpx

from scaimind_local import LocalCoordinator
from scaimind_local.testing import write_custom_dataset, write_model

from ._util import submit, wait_for

ROWS = [{"prompt": f"q{i}", "reference": f"a{i}"} for i in range(10)]


def _slow_job(
    coord: LocalCoordinator, unique: str, delay: float, right: int = 10
) -> tuple[str, str]:
    """A job whose model answers the first `right` of ROWS correctly, `delay` s per sample."""
    answers = {f"q{i}": f"a{i}" for i in range(right)}
    model = write_model(
        coord.drive_root, f"org/models/slow-{unique}", options={"answers": answers, "delay": delay}
    )
    dataset = write_custom_dataset(coord.drive_root, f"org/eval/ten-{unique}.jsonl", ROWS)
    coord.register_job(f"job_slow_{unique}", model)
    return f"job_slow_{unique}", dataset


def test_scored_setup_completes_with_exact_score(scored_setup, api: httpx.Client) -> None:
    coord, job_id, model_uri, benchmark, expected = scored_setup
    resp = submit(api, job_id, benchmark, model_uri=model_uri, checkpoint_id="ckpt-7")
    assert resp.status_code == 200
    queued = resp.json()["data"]
    assert queued["status"] == "QUEUED"
    assert queued["evaluation_id"].startswith("eval_")
    assert queued["checkpoint_id"] == "ckpt-7"
    file = coord.drive_root / benchmark["dataset"].removeprefix("scaidrive://")
    assert queued["benchmarks"] == [
        {
            "name": benchmark["name"],
            "dataset": benchmark["dataset"],
            "num_samples": "0",
            "parameters": {},
            "data": {
                "digest": "sha256:" + hashlib.sha256(file.read_bytes()).hexdigest(),
                "records": 4,
                "source": benchmark["dataset"],
            },
        }
    ]
    assert queued["model_digest"].startswith("sha256:")
    done = wait_for(api, queued["evaluation_id"])
    assert done["status"] == "COMPLETED", done
    [result] = done["results"]
    assert result["benchmark"] == benchmark["name"]
    assert result["status"] == "COMPLETED"
    assert result["score"] == expected == result["metrics"]["exact_match"]
    assert result["num_samples"] == "4"
    assert math.isclose(result["stderr"]["exact_match"], math.sqrt(0.75 * 0.25 / 3))
    assert done["progress"] == [{"benchmark": benchmark["name"], "completed": "4", "total": "4"}]
    for key in ("created_at", "updated_at", "started_at", "completed_at"):
        assert done[key].endswith("Z")
    assert "error" not in done

    samples = api.get(f"/evaluations/{done['evaluation_id']}/samples", params={"page_size": 3})
    page = samples.json()["data"]
    assert [s["record"]["correct"] for s in page["samples"]] == [True, True, True]
    rest = api.get(
        f"/evaluations/{done['evaluation_id']}/samples",
        params={"page_size": 3, "page_token": page["next_page_token"]},
    ).json()["data"]
    assert [s["record"]["completion"] for s in rest["samples"]] == ["warm"]
    assert rest["next_page_token"] == ""


def test_running_reports_progress_then_completes(
    coordinator: LocalCoordinator, api: httpx.Client, unique: str
) -> None:
    job_id, dataset = _slow_job(coordinator, unique, delay=0.05, right=7)
    eid = submit(api, job_id, {"name": "custom-ten", "dataset": dataset}).json()["data"][
        "evaluation_id"
    ]
    running = wait_for(
        api, eid, lambda r: r["status"] == "RUNNING" and 0 < int(r["progress"][0]["completed"]) < 10
    )
    assert running["progress"][0]["total"] == "10"
    assert "started_at" in running and "completed_at" not in running
    done = wait_for(api, eid)
    assert done["status"] == "COMPLETED"
    assert done["results"][0]["score"] == 0.7


def test_num_samples_and_repeated_benchmarks_keep_spec_order(
    coordinator: LocalCoordinator, api: httpx.Client, unique: str
) -> None:
    job_id, dataset = _slow_job(coordinator, unique, delay=0, right=3)
    specs = [
        {"name": "custom-ten", "dataset": dataset, "num_samples": 5},
        {"name": "custom-ten", "dataset": dataset, "num_samples": "2"},
        {"name": "custom-other", "dataset": dataset, "parameters": {"match": "contains"}},
    ]
    eid = submit(api, job_id, *specs).json()["data"]["evaluation_id"]
    done = wait_for(api, eid)
    assert done["status"] == "COMPLETED", done
    results = done["results"]
    assert [r["benchmark"] for r in results] == ["custom-ten", "custom-ten", "custom-other"]
    assert [r["extra"]["spec_index"] for r in results] == [0, 1, 2]
    assert [r["num_samples"] for r in results] == ["5", "2", "10"]
    assert [r["score"] for r in results] == [0.6, 1.0, 0.3]
    assert [b["num_samples"] for b in done["benchmarks"]] == ["5", "2", "0"]
    params = {"benchmark": "custom-ten", "page_size": "100"}
    ten = api.get(f"/evaluations/{eid}/samples", params=params).json()["data"]["samples"]
    assert [(s["spec_index"], s["index"]) for s in ten] == [(0, i) for i in range(5)] + [
        (1, 0),
        (1, 1),
    ]


def test_malformed_line_is_refused_at_submit_with_its_number_and_server_survives(
    coordinator: LocalCoordinator, api: httpx.Client, unique: str
) -> None:
    job_id, _ = _slow_job(coordinator, unique, delay=0)
    bad = coordinator.drive_root / f"org/eval/bad-{unique}.jsonl"
    bad.write_text('{"prompt": "q0", "reference": "a0"}\n\n{"prompt": "q1", oops}\n')
    uri = f"scaidrive://org/eval/bad-{unique}.jsonl"
    resp = submit(api, job_id, {"name": "custom-bad", "dataset": uri})
    assert resp.status_code == 400
    assert resp.json()["error"]["message"].startswith(f"{uri} line 3 is not valid JSON")
    assert api.get("/benchmarks").status_code == 200


def test_model_exception_fails_each_benchmark_with_the_reason(
    coordinator: LocalCoordinator, api: httpx.Client, unique: str
) -> None:
    model = write_model(
        coordinator.drive_root, f"org/models/broken-{unique}", options={"fail": "GPU on fire"}
    )
    dataset = write_custom_dataset(coordinator.drive_root, f"org/eval/one-{unique}.jsonl", ROWS[:1])
    coordinator.register_job(f"job_broken_{unique}", model)
    specs = [{"name": "custom-x", "dataset": dataset}, {"name": "custom-y", "dataset": dataset}]
    eid = submit(api, f"job_broken_{unique}", *specs).json()["data"]["evaluation_id"]
    done = wait_for(api, eid)
    assert done["status"] == "FAILED"
    assert done["error"] == {
        "code": "BENCHMARK_FAILED",
        "message": "benchmark custom-x failed: RuntimeError: GPU on fire; "
        "benchmark custom-y failed: RuntimeError: GPU on fire",
    }
    assert [(r["benchmark"], r["status"], r["error"]["message"]) for r in done["results"]] == [
        ("custom-x", "FAILED", "RuntimeError: GPU on fire"),
        ("custom-y", "FAILED", "RuntimeError: GPU on fire"),
    ]
    assert all(r["metrics"] == {} and "score" not in r for r in done["results"])


def test_model_uri_defaults_to_the_jobs_model(scored_setup, api: httpx.Client) -> None:
    _coord, job_id, model_uri, benchmark, expected = scored_setup
    data = submit(api, job_id, benchmark).json()["data"]
    assert data["model_uri"] == model_uri
    assert wait_for(api, data["evaluation_id"])["results"][0]["score"] == expected


def test_benchmarks_route_lists_supported_names(api: httpx.Client) -> None:
    names = api.get("/benchmarks").json()["data"]["benchmarks"]
    assert "custom-*" in names


def test_healthz_needs_no_key(coordinator: LocalCoordinator) -> None:
    resp = httpx.get(coordinator.url + "/healthz")
    assert resp.status_code == 200 and resp.json() == {"data": {"status": "ok"}}
