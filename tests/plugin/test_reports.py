"""Release reports from real sessions: the checklist, the JSON report, counts, errored gates, snapshots."""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_scaimind import _report

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("SCAIMIND_UPDATE_SNAPSHOTS") == "1"
"""Set SCAIMIND_UPDATE_SNAPSHOTS=1 to rewrite the snapshot files after an intended change."""


def _release_suite(project, extra: str = "") -> None:
    project.pytester.makepyfile(
        test_release=f'''
import pytest
from pytest_scaimind import assert_benchmark

BIG = "{project.big}"
QA = "{project.qa}"

def test_big_passes():
    assert_benchmark("custom-big", dataset=BIG, min_score=0.9)

def test_qa_fails():
    assert_benchmark("custom-qa", dataset=QA, min_score=0.8)

def test_big_does_not_regress():
    assert_benchmark("custom-big", dataset=BIG, max_drop=0.02)

def test_big_confidently_good():
    assert_benchmark("custom-big", dataset=BIG, min_score=0.9, confidence=0.95)

@pytest.mark.parametrize("floor", [0.5, 0.6])
def test_qa_floors(floor):
    assert_benchmark("custom-qa", dataset=QA, min_score=floor)

def test_not_a_gate():
    assert 1 + 1 == 2
{extra}
'''
    )


def _baseline(project, big: float = 0.97, qa: float = 0.75) -> Path:
    """A stored baseline for both specs (its source evaluation no longer exists)."""
    path = project.pytester.path / "baseline.json"
    entries = {}
    for dataset, value, n in ((project.big, big, 20), (project.qa, qa, 4)):
        name = "custom-big" if dataset == project.big else "custom-qa"
        entries[f"{name}@{dataset}"] = {
            "spec": {"name": name, "dataset": dataset},
            "metrics": {"exact_match": {"value": value}},
            "num_samples": n,
            "source": {"evaluation_id": "eval_gone", "recorded_at": "2026-11-01T00:00:00Z"},
        }
    path.write_text(json.dumps({"format": "scaimind-baseline/1", "benchmarks": entries}))
    return path


def _release_run(project, *extra: str) -> pytest.RunResult:
    """The release suite against a stored baseline, inconclusive gates let through."""
    baseline = project.pytester.path / "baseline.json"
    result = project.run(f"--scaimind-baseline={baseline}", "--scaimind-inconclusive=pass", *extra)
    result.assert_outcomes(passed=6, failed=1)
    return result


def test_checklist_and_json_of_a_real_session(gate_project):
    _release_suite(gate_project)
    _baseline(gate_project)
    _release_run(gate_project, "--scaimind-report=release.md", "--junitxml=junit.xml")
    _release_run(gate_project, "--scaimind-report=release.json")
    [evaluation_id] = gate_project.evaluation_ids()
    text = (gate_project.pytester.path / "release.md").read_text()

    # counts agree with pytest: 5 gates pytest passed (the inconclusive one included), 1 failed
    assert text.startswith("## Model release gates: 5 of 6 passed (1 failed, 1 inconclusive)\n")
    boxes = [line for line in text.splitlines() if line.startswith("- [")]
    assert [b[:6] for b in boxes] == ["- [x] ", "- [ ] ", "- [x] ", "- [x] ", "- [x] ", "- [x] "]
    # each box names its test (in collection order), its criterion and its verdict once
    tests = [re.match(r"- \[.\] `([^`]+)`", b).group(1) for b in boxes]
    assert tests == [
        "test_release.py::test_big_passes",
        "test_release.py::test_qa_fails",
        "test_release.py::test_big_does_not_regress",
        "test_release.py::test_big_confidently_good",
        "test_release.py::test_qa_floors[0.5]",
        "test_release.py::test_qa_floors[0.6]",
    ]
    assert "exact_match ≥ 0.8000 (min_score=0.8) → **FAIL** 0.7500" in boxes[1]
    assert "(max_drop=0.02 vs baseline 0.9700) → **PASS** 0.9500" in boxes[2]
    assert "**PASS** (inconclusive) 0.9500, interval [0.7639, 0.9911]" in boxes[3]
    for box in boxes:
        assert box.count("custom-") == 1
    # the job's model, the configured coordinator, links, provenance
    assert f"model `{gate_project.model_uri}`" in text
    url = gate_project.coordinator.url
    assert f"[record]({url}/v1/modules/scaimind/evaluations/{evaluation_id})" in text
    assert f"[samples]({url}/v1/modules/scaimind/evaluations/{evaluation_id}/samples)" in text
    assert "- baseline: `baseline.json` (scaimind-baseline/1)" in text
    assert "- git: not run in a git repository" in text
    assert "### Compared with the baseline baseline.json" in text

    data = json.loads((gate_project.pytester.path / "release.json").read_text())
    import jsonschema

    jsonschema.validate(data, json.loads(_report.SCHEMA.read_text()))
    assert data["format"] == "scaimind-report/1"
    assert data["summary"]["passed"] == 5 and data["summary"]["inconclusive"] == 1
    assert data["model"]["uri"] == gate_project.model_uri
    assert data["coordinator"]["host"] == url and data["coordinator"]["url"] == url
    gates = {g["test"].split("::")[1]: g for g in data["gates"]}
    assert gates["test_big_does_not_regress"]["criteria"] == {"max_drop": 0.02}
    assert gates["test_big_does_not_regress"]["baseline_source"] == {
        "file": "baseline.json",
        "entry": f"custom-big@{gate_project.big}",
        "kind": "stored",
        "evaluation_id": "eval_gone",
        "recorded_at": "2026-11-01T00:00:00Z",
    }
    assert gates["test_big_confidently_good"]["status"] == "passed"
    assert gates["test_big_confidently_good"]["verdict"] == "inconclusive"
    assert all(g["outcome"] in ("passed", "failed") for g in data["gates"])
    assert data["comparison"]["reference"]["kind"] == "baseline"
    row = next(r for r in data["comparison"]["rows"] if r["test"].endswith("test_big_passes"))
    assert row["then"] == 0.97 and row["now"] == 0.95 and row["method"] == "unpaired newcombe"

    props = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in ET.parse(gate_project.pytester.path / "junit.xml").getroot().iter("testcase")
    }
    assert props["test_big_passes"]["scaimind_evaluation_id"] == evaluation_id


@pytest.mark.parametrize(
    ("model", "args"),
    [({"fail": "GPU fell off the bus"}, []), ({"delay": 0.2}, ["--scaimind-timeout=0.2"])],
    ids=["failed", "timed-out"],
)
def test_errored_gates_keep_their_evaluation_id_everywhere(gate_project, unique, model, args):
    import scaimind_nb

    used = gate_project.model(f"org/models/errored-{unique}", **model)
    gate_project.coordinator.register_job(gate_project.job_id, used)
    gate_project.pytester.makepyfile(
        test_errored=f'''
from pytest_scaimind import assert_benchmark

def test_big():
    assert_benchmark("custom-big", dataset="{gate_project.big}", min_score=0.9)
'''
    )
    result = gate_project.run(
        *args, "--junitxml=junit.xml", "--scaimind-report=release.json", "--scaimind-reuse=never"
    )
    result.assert_outcomes(errors=1)
    [evaluation_id] = gate_project.evaluation_ids()
    data = json.loads((gate_project.pytester.path / "release.json").read_text())
    [gate] = data["gates"]
    assert gate["evaluation_id"] == evaluation_id
    assert gate["status"] == "error" and gate["outcome"] == "error"
    assert data["model"]["uri"] == used  # the job's model, not None
    [case] = ET.parse(gate_project.pytester.path / "junit.xml").getroot().iter("testcase")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["scaimind_evaluation_id"] == evaluation_id
    result.stdout.fnmatch_lines([f"evaluation {evaluation_id}*"])
    gate_project.run(*args, "--scaimind-report=release.md", "--scaimind-reuse=never")
    text = (gate_project.pytester.path / "release.md").read_text()
    assert f"model `{used}`" in text
    assert f"e1: `{gate_project.evaluation_ids()[-1]}`" in text
    with scaimind_nb.Client(gate_project.coordinator.url) as client:  # free the shared workers
        for left in gate_project.evaluation_ids():
            if not client.get(left).is_terminal:
                client.cancel(left)


def test_a_gate_pytest_failed_later_is_not_checked(gate_project):
    gate_project.pytester.makepyfile(
        test_late=f'''
from pytest_scaimind import assert_benchmark

def test_gate_then_assert():
    assert_benchmark("custom-big", dataset="{gate_project.big}", min_score=0.9)
    assert False, "a plain assertion after the gate"
'''
    )
    gate_project.run("--scaimind-report=release.md").assert_outcomes(failed=1)
    text = (gate_project.pytester.path / "release.md").read_text()
    assert text.startswith("## Model release gates: 0 of 1 passed (1 failed)")
    assert "- [ ] `test_late.py::test_gate_then_assert`" in text
    assert "but pytest reports the test failed" in text


def test_step_summary_gets_the_checklist(gate_project, monkeypatch):
    _release_suite(gate_project)
    summary = gate_project.pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    gate_project.run().assert_outcomes(passed=4, failed=3)  # no baseline: max_drop fails
    text = summary.read_text()
    assert text.startswith("## Model release gates: 3 of 6 passed (3 failed, 1 inconclusive)")
    assert "<" not in text.replace("<br>", "")  # plain Markdown, no HTML


def test_inconclusive_gate_warning_is_public_and_filterable(gate_project):
    gate_project.pytester.makepyfile(
        test_warn=f'''
from pytest_scaimind import assert_benchmark

def test_straddles():
    assert_benchmark("custom-big", dataset="{gate_project.big}", min_score=0.9, confidence=0.95)
'''
    )
    warned = gate_project.run("--scaimind-inconclusive=pass")
    warned.assert_outcomes(passed=1, warnings=1)
    warned.stdout.fnmatch_lines(["*InconclusiveGateWarning*"])
    strict = gate_project.run(
        "--scaimind-inconclusive=pass", "-W", "error::pytest_scaimind.InconclusiveGateWarning"
    )
    strict.assert_outcomes(failed=1)
    quiet = gate_project.run(
        "--scaimind-inconclusive=pass", "-W", "ignore::pytest_scaimind.InconclusiveGateWarning"
    )
    quiet.assert_outcomes(passed=1)


# -- snapshots --------------------------------------------------------------------------------


def _normalise(text: str, project) -> str:
    """Replace what changes from run to run: ids, times, ports, paths, versions, durations."""
    unique = project.job_id.removeprefix("job_gate_")
    text = text.replace(unique, "<unique>")
    text = text.replace(str(project.pytester.path), "<tmp>")
    text = re.sub(r"eval_[0-9a-f]{24}", "eval_<id>", text)
    text = re.sub(r"\d{8}T\d{6}Z-[0-9a-f]{6}", "<run>", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "<time>", text)
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", text)
    text = re.sub(r"- versions: .*", "- versions: <versions>", text)
    text = re.sub(r"- platform: .*", "- platform: <platform>", text)
    # the model's digest covers its python target's source (scaimind_local.testing)
    text = re.sub(r"(- model: .*, digest )`sha256:[0-9a-f]{64}`", r"\1<digest>", text)
    return re.sub(r" in \d+\.\d+s", " in <t>s", text)


def _check_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no snapshot {path}: run with SCAIMIND_UPDATE_SNAPSHOTS=1 to record it"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, (
        f"{name} changed; if intended, rerun with SCAIMIND_UPDATE_SNAPSHOTS=1 and review the diff"
    )


def test_snapshot_of_the_checklist_and_the_80_column_summary(gate_project, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    _release_suite(gate_project)
    _baseline(gate_project)
    lines = _release_run(gate_project, "--scaimind-report=release.md").outlines
    start = next(i for i, line in enumerate(lines) if "scaimind quality gates" in line)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("====="))
    summary = "\n".join(lines[start:end]) + "\n"
    assert max(len(line) for line in lines[start:end]) <= 80
    _check_snapshot("summary-80.txt", _normalise(summary, gate_project))
    checklist = (gate_project.pytester.path / "release.md").read_text()
    _check_snapshot("checklist.md", _normalise(checklist, gate_project))


def test_the_report_names_the_git_commit_of_the_suite(gate_project):
    import shutil
    import subprocess

    if shutil.which("git") is None:
        pytest.skip("needs git")
    root = gate_project.pytester.path

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    _release_suite(gate_project)
    git("init", "-q", "-b", "main")
    git("-c", "user.email=ci@example.com", "-c", "user.name=ci", "add", "test_release.py")
    git("-c", "user.email=ci@example.com", "-c", "user.name=ci", "commit", "-q", "-m", "gates")
    head = git("rev-parse", "HEAD")
    gate_project.run("--scaimind-report=release.json")
    data = json.loads((root / "release.json").read_text())
    assert data["provenance"]["git"] == {"commit": head, "branch": "main", "dirty": False}
    (root / "test_release.py").write_text((root / "test_release.py").read_text() + "\n# edit\n")
    gate_project.run("--scaimind-report=release.md")
    assert f"- git: `{head}` on `main`, dirty" in (root / "release.md").read_text()
