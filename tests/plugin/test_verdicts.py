"""Confidence verdicts, baselines, reports, JUnit properties, secrets and hooks, end to end."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from pytest_scaimind._gates import label, make_gate


def _confidence_suite(project) -> None:
    project.pytester.makepyfile(
        test_confidence=f'''
from pytest_scaimind import assert_benchmark

BIG = "{project.big}"

def test_interval_clears():
    assert_benchmark("custom-big", dataset=BIG, min_score=0.7, confidence=0.95)

def test_interval_below():
    assert_benchmark("custom-big", dataset=BIG, min_score=0.995, confidence=0.95)

def test_interval_straddles():
    assert_benchmark("custom-big", dataset=BIG, min_score=0.9, confidence=0.95)
'''
    )


@pytest.mark.parametrize(
    ("policy", "outcomes"),
    [
        ("fail", {"passed": 1, "failed": 2}),
        ("skip", {"passed": 1, "failed": 1, "skipped": 1}),
        ("pass", {"passed": 2, "failed": 1}),
    ],
)
def test_confidence_gate_three_verdicts(gate_project, policy, outcomes):
    _confidence_suite(gate_project)
    result = gate_project.run(f"--scaimind-inconclusive={policy}", "-rs")
    result.assert_outcomes(**outcomes)
    result.stdout.fnmatch_lines(["*95% CI [[]0.7639, 0.9911[]] lies below 0.9950*"])
    result.stdout.fnmatch_lines(["*inconclusive: 95% CI*straddles 0.9000*need n≈*to decide*"])
    result.stdout.fnmatch_lines(["*test_interval_straddles*INCONCLUSIVE*"])


def test_baseline_bless_compare_and_live(gate_project):
    pytester = gate_project.pytester
    pytester.makepyfile(
        test_regress=f'''
from pytest_scaimind import assert_benchmark

def test_big_does_not_regress():
    assert_benchmark("custom-big", dataset="{gate_project.big}", max_drop=0.01)
'''
    )
    missing = gate_project.run()
    missing.assert_outcomes(failed=1)
    missing.stdout.fnmatch_lines(
        [
            "*no baseline: pass --scaimind-baseline=PATH and run once with --scaimind-update-baseline*"
        ]
    )

    path = pytester.path / "baseline.json"
    gate_project.run(f"--scaimind-baseline={path}").stdout.fnmatch_lines(
        ["*no baseline for * in *baseline.json: run once with --scaimind-update-baseline*"]
    )
    gate_project.run(f"--scaimind-baseline={path}", "--scaimind-update-baseline").assert_outcomes(
        passed=1
    )
    data = json.loads(path.read_text())
    spec_label = label(make_gate("custom-big", dataset=gate_project.big).spec)
    entry = data["benchmarks"][spec_label]
    [evaluation_id] = gate_project.evaluation_ids()
    assert entry["metrics"]["exact_match"]["value"] == pytest.approx(0.95)
    assert entry["num_samples"] == 20
    assert entry["source"]["evaluation_id"] == evaluation_id
    assert entry["source"]["job_id"] == gate_project.job_id

    gate_project.run(f"--scaimind-baseline={path}").assert_outcomes(passed=1)
    entry["metrics"]["exact_match"]["value"] = 0.99
    path.write_text(json.dumps(data))
    regressed = gate_project.run(f"--scaimind-baseline={path}")
    regressed.assert_outcomes(failed=1)
    regressed.stdout.fnmatch_lines(
        ["*exact_match 0.9500 < 0.9800 [[]baseline 0.9900 - max_drop 0.01[]] (delta -0.0400)*"]
    )

    path.write_text(json.dumps({"benchmarks": {spec_label: {"evaluation_id": evaluation_id}}}))
    gate_project.run(f"--scaimind-baseline={path}").assert_outcomes(passed=1)
    path.write_text(json.dumps({"default": {"job_id": gate_project.job_id}}))
    gate_project.run(f"--scaimind-baseline={path}").assert_outcomes(passed=1)
    assert gate_project.submissions() == 1


def test_reports_junit_step_summary_and_no_secret_anywhere(
    gate_project, monkeypatch, scaimind_api_key
):
    pytester = gate_project.pytester
    pytester.makepyfile(
        test_release=f'''
from pytest_scaimind import assert_benchmark

def test_big():
    assert_benchmark("custom-big", dataset="{gate_project.big}", min_score=0.9)

def test_qa():
    assert_benchmark("custom-qa", dataset="{gate_project.qa}", min_score=0.8)
'''
    )
    summary = pytester.path / "step_summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    md = gate_project.run("--junitxml=junit.xml", "--scaimind-report=out/release.md")
    md.assert_outcomes(passed=1, failed=1)
    js = gate_project.run("--scaimind-report=out/release.json")
    [evaluation_id] = gate_project.evaluation_ids()

    md.stdout.fnmatch_lines(
        [
            "*scaimind quality gates*",
            "test*bench*score*thresh*Δ thr*n*verdict",
        ]
    )
    assert md.stdout.str().count("scaimind quality gates") == 1

    props = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase")
    }
    assert props["test_big"]["scaimind_verdict"] == "pass"
    assert props["test_qa"]["scaimind_verdict"] == "fail"
    assert float(props["test_qa"]["scaimind_score"]) == pytest.approx(0.75)
    assert float(props["test_qa"]["scaimind_threshold"]) == pytest.approx(0.8)
    assert props["test_qa"]["scaimind_n"] == "4"
    assert props["test_qa"]["scaimind_evaluation_id"] == evaluation_id

    text = (pytester.path / "out/release.md").read_text()
    assert "1 of 2 passed (1 failed)" in text
    assert "- [x] `test_release.py::test_big` on `custom-big" in text
    assert "- [ ] `test_release.py::test_qa` on `custom-qa" in text
    for fact in (
        gate_project.job_id,
        gate_project.model_uri,
        evaluation_id,
        gate_project.coordinator.url,
    ):
        assert fact in text
    data = json.loads((pytester.path / "out/release.json").read_text())
    assert [e["evaluation_id"] for e in data["evaluations"]] == [evaluation_id]
    assert data["summary"]["passed"] == 1
    assert {g["verdict"] for g in data["gates"]} == {"pass", "fail"}
    assert summary.read_text().count("## Model release gates") == 2

    outputs = [md.stdout.str(), md.stderr.str(), js.stdout.str(), js.stderr.str()]
    files = [p for p in pytester.path.rglob("*") if p.is_file()]
    assert any(".pytest_cache" in str(p) and "scaimind" in str(p) for p in files)
    for blob in outputs + [p.read_text(errors="replace") for p in files]:
        assert scaimind_api_key not in blob


def test_hooks_edit_the_request_see_the_evaluation_and_supply_scores(gate_project):
    pytester = gate_project.pytester
    pytester.makeconftest(
        f'''
import json

def pytest_scaimind_modify_request(config, request):
    request["benchmarks"].append({{"name": "custom-extra", "dataset": "{gate_project.qa}"}})

def pytest_scaimind_evaluation_done(config, evaluation):
    with open("done.jsonl", "a") as fh:
        fh.write(json.dumps([evaluation.evaluation_id, evaluation.status.value]) + "\\n")

def pytest_scaimind_score(config, gate, result):
    return 0.42 if gate.metric == "house_metric" else None
'''
    )
    pytester.makepyfile(
        test_hooked=f'''
from pytest_scaimind import assert_benchmark

def test_house_metric():
    assert_benchmark("custom-big", dataset="{gate_project.big}", metric="house_metric", min_score=0.4)

def test_extra_benchmark_from_the_hook():
    assert_benchmark("custom-extra", dataset="{gate_project.qa}", min_score=0.7)
'''
    )
    result = gate_project.run()
    result.assert_outcomes(passed=2)
    [evaluation_id] = gate_project.evaluation_ids()
    done = [json.loads(line) for line in (pytester.path / "done.jsonl").read_text().splitlines()]
    assert done == [[evaluation_id, "COMPLETED"]]
    result.stdout.fnmatch_lines(["*test_house_metric*house_metric*0.4200*PASS*"])
