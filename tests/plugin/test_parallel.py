"""xdist and the embedded coordinator: still one submission, one summary, one report."""

from __future__ import annotations

import json
import uuid

import pytest


@pytest.mark.slow
def test_xdist_two_workers_submit_once_and_report_once(gate_project):
    pytester = gate_project.pytester
    tests = "\n".join(
        f'''
def test_gate_{i}():
    assert_benchmark("custom-big", dataset="{gate_project.big}", min_score=0.{5 + i})

def test_plain_{i}():
    pass
'''
        for i in range(4)
    )
    pytester.makepyfile(test_many="from pytest_scaimind import assert_benchmark\n" + tests)
    from pytest_scaimind._evaluations import handoff_dir

    run = uuid.uuid4().hex
    result = pytester.runpytest_subprocess(
        *gate_project.args("-n", "2", f"--testrunuid={run}", "--scaimind-report=release.json")
    )
    result.assert_outcomes(passed=8)
    assert not handoff_dir(run).exists()  # the controller removed the workers' hand-off folder
    assert gate_project.submissions() == 1
    out = result.stdout.str()
    assert out.count("scaimind quality gates") == 1
    assert sum(line.startswith("test_gate_") and "PASS" in line for line in result.outlines) == 4
    data = json.loads((pytester.path / "release.json").read_text())
    assert len(data["gates"]) == 4 and data["summary"]["passed"] == 4
    # collection order, not the order the workers finished in
    assert [g["test"] for g in data["gates"]] == [f"test_many.py::test_gate_{i}" for i in range(4)]
    assert [g["index"] for g in data["gates"]] == [0, 2, 4, 6]


@pytest.mark.slow
def test_xdist_workers_write_their_progress_lines_to_stderr(gate_project, unique):
    slow = gate_project.model(f"org/models/slow-{unique}", delay=0.05)
    gate_project.coordinator.register_job(gate_project.job_id, slow)
    gate_project.pytester.makepyfile(
        test_slow=f"""
from pytest_scaimind import assert_benchmark

def test_a():
    assert_benchmark("custom-big", dataset="{gate_project.big}", min_score=0.9)

def test_b():
    assert_benchmark("custom-big", dataset="{gate_project.big}", min_score=0.5)
"""
    )
    result = gate_project.pytester.runpytest_subprocess(
        *gate_project.args("-n", "2", "--scaimind-progress-interval=0.2")
    )
    result.assert_outcomes(passed=2)
    [evaluation_id] = gate_project.evaluation_ids()
    result.stderr.fnmatch_lines(
        [f"scaimind: waiting *s for {evaluation_id}: RUNNING, custom-big */20"]
    )


def test_host_local_starts_the_embedded_coordinator(pytester, monkeypatch):
    from scaimind_local.testing import write_custom_dataset, write_model

    monkeypatch.delenv("SCAIGRID_HOST", raising=False)
    monkeypatch.delenv("SCAIGRID_API_KEY", raising=False)
    drive = pytester.path / "drive"
    model = write_model(drive, "acme/models/m", options={"answers": {"1+1=": "2"}})
    dataset = write_custom_dataset(
        drive, "acme/eval/add.jsonl", [{"prompt": "1+1=", "reference": "2"}]
    )
    pytester.makeini(
        f"""
[pytest]
scaimind_host = local
scaimind_local_drive = {drive}
scaimind_local_db = {pytester.path / "local.sqlite"}
scaimind_model_uri = {model}
scaimind_poll_interval = 0.05
"""
    )
    pytester.makepyfile(
        test_local=f'''
from pytest_scaimind import assert_benchmark

def test_add():
    assert_benchmark("custom-add", dataset="{dataset}", min_score=1.0)
'''
    )
    first = pytester.runpytest("--scaimind-job=job_local")
    first.assert_outcomes(passed=1)
    first.stdout.fnmatch_lines(
        ["job job_local, model scaidrive://acme/models/m", "evaluation eval_*, coordinator local*"]
    )
    pytester.runpytest("--scaimind-job=job_local").assert_outcomes(passed=1)
    import sqlite3

    with sqlite3.connect(pytester.path / "local.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == 1


def test_the_examples_gate_suite_passes_against_the_embedded_coordinator(pytester, monkeypatch):
    import shutil
    from pathlib import Path

    monkeypatch.delenv("SCAIGRID_HOST", raising=False)
    monkeypatch.delenv("SCAIGRID_API_KEY", raising=False)
    example = Path(__file__).parents[2] / "examples" / "gates"
    shutil.copytree(
        example,
        pytester.path,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns(".pytest_cache", "__pycache__"),
    )
    result = pytester.runpytest("--scaimind-job=job_demo", "--scaimind-report=release.md")
    result.assert_outcomes(passed=6)
    checklist = (pytester.path / "release.md").read_text()
    assert "- [x] `test_release.py::test_support_answers` on `custom-acme-support" in checklist
