"""Confidence verdicts, baselines, reports, JUnit properties, secrets and hooks, end to end."""

from __future__ import annotations

import fnmatch
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_scaimind._baseline import FORMAT
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
    spec_label = label(make_gate("custom-big", dataset=gate_project.big, spec_only=True).spec)
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

    path.write_text(
        json.dumps({"format": FORMAT, "benchmarks": {spec_label: {"evaluation_id": evaluation_id}}})
    )
    gate_project.run(f"--scaimind-baseline={path}").assert_outcomes(passed=1)
    path.write_text(json.dumps({"format": FORMAT, "default": {"job_id": gate_project.job_id}}))
    report = gate_project.pytester.path / "live.json"
    gate_project.run(f"--scaimind-baseline={path}", f"--scaimind-report={report}").assert_outcomes(
        passed=1
    )
    assert gate_project.submissions() == 1
    [gate] = json.loads(report.read_text())["gates"]
    assert gate["baseline_source"] == {  # the job's entry, and the evaluation it resolved to
        "kind": "live",
        "file": "baseline.json",
        "entry": "default",
        "job_id": gate_project.job_id,
        "evaluation_id": evaluation_id,
    }


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
from pathlib import Path

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


# --- paired regression gates against a live coordinator ------------------------------------

PAIRED = 200
BASE_RIGHT = set(range(160))  # the baseline model gets 160 of 200 right (0.80)


def _answers(right: set[int]) -> dict[str, str]:
    return {f"x{i}?": f"y{i}" for i in right}


class PairedProject:
    """A 200-item dataset, a regression gate on it, and models whose answers differ by design."""

    def __init__(self, project, unique: str) -> None:
        from scaimind_local.testing import write_custom_dataset, write_model

        self.project, self.unique = project, unique
        drive = project.coordinator.drive_root
        rows = [{"prompt": f"x{i}?", "reference": f"y{i}"} for i in range(PAIRED)]
        self.dataset = write_custom_dataset(drive, f"org/eval/paired-{unique}.jsonl", rows)
        self.baseline = project.pytester.path / "baseline.json"
        self._write_model = write_model
        project.pytester.makepyfile(
            test_paired=f'''
from pytest_scaimind import assert_benchmark

def test_no_drop_beyond_two_points():
    assert_benchmark("custom-paired", dataset="{self.dataset}", max_drop=0.02, confidence=0.95)
'''
        )

    def use(self, name: str, right: set[int]) -> None:
        """Make the job's model one that answers exactly the items in `right`."""
        uri = self._write_model(
            self.project.coordinator.drive_root,
            f"org/models/{name}-{self.unique}",
            options={"answers": _answers(right)},
        )
        self.project.coordinator.register_job(self.project.job_id, uri)

    def run(self, *extra: str, baseline: Path | None = None) -> tuple[pytest.RunResult, dict]:
        report = self.project.pytester.path / "gates.json"
        result = self.project.run(
            f"--scaimind-baseline={baseline or self.baseline}",
            f"--scaimind-report={report}",
            *extra,
        )
        data = json.loads(report.read_text()) if report.exists() else {}
        report.unlink(missing_ok=True)
        return result, data

    def unpaired_copy(self) -> Path:
        """The same baseline file without its per-item outcomes."""
        data = json.loads(self.baseline.read_text())
        for entry in data["benchmarks"].values():
            entry.pop("items", None)
        path = self.baseline.with_name("unpaired.json")
        path.write_text(json.dumps(data))
        return path


@pytest.fixture
def paired(gate_project, unique) -> PairedProject:
    project = PairedProject(gate_project, unique)
    project.use("before", BASE_RIGHT)
    blessed, _ = project.run("--scaimind-update-baseline")
    blessed.assert_outcomes(passed=1)
    return project


def _unwrapped(result: pytest.RunResult) -> str:
    """The terminal output with the statistics' wrapped lines joined again (they fit 80 columns)."""
    return "\n".join(result.outlines).replace("\n  ", " ")


def _gate(report: dict) -> dict:
    [gate] = report["gates"]
    return gate


def test_bless_stores_per_item_outcomes_and_prints_what_changed(paired):
    entry = next(iter(json.loads(paired.baseline.read_text())["benchmarks"].values()))
    assert entry["items"]["n"] == PAIRED and entry["items"]["metric"] == "exact_match"
    [block] = entry["items"]["blocks"]
    assert block["outcomes"] == "1" * 160 + "0" * 40
    # a second bless with a changed model says what changed and measures the discordance
    paired.use("changed", set(range(150)))
    again, _ = paired.run("--scaimind-update-baseline", "--scaimind-reuse=never")
    again.stdout.fnmatch_lines(
        [
            "baseline updated: *baseline.json",
            "~ custom-paired@*: exact_match 0.8000 -> 0.7500 (-0.0500), 5.0% of items changed "
            "(n=200, 200 per-item outcomes)",
        ]
    )
    entry = next(iter(json.loads(paired.baseline.read_text())["benchmarks"].values()))
    assert entry["discordance"]["rate"] == 0.05 and entry["discordance"]["items"] == PAIRED


def test_an_unchanged_rerun_passes_paired_where_unpaired_cannot_decide(paired):
    rerun, report = paired.run("--scaimind-reuse=never")
    rerun.assert_outcomes(passed=1)
    gate = _gate(report)
    assert gate["method"] == "paired newcombe" and gate["paired"] is True
    assert (gate["worse"], gate["better"], gate["n"]) == (0, 0, PAIRED)
    assert gate["delta_ci_low"] > -0.02 and gate["baseline_source"]["kind"] == "stored"
    assert "0 worse / 0 better of n=200 paired items" in gate["message"]
    assert paired.project.submissions() == 2  # the bless and this re-run

    unpaired, report = paired.run(baseline=paired.unpaired_copy())
    unpaired.assert_outcomes(failed=1)
    gate = _gate(report)
    assert gate["verdict"] == "inconclusive" and gate["method"] == "unpaired newcombe"
    unpaired.stdout.fnmatch_lines(
        ["*inconclusive: Δ CI straddles -0.0200 [[]max_drop 0.02; unpaired: the baseline *need n≈*"]
    )


def test_a_real_drop_fails_paired_where_unpaired_cannot_decide(paired):
    paired.use("dropped", set(range(146)))  # 14 items lost, none gained
    dropped, report = paired.run()
    dropped.assert_outcomes(failed=1)
    dropped.stdout.fnmatch_lines(
        [
            "*exact_match 0.7300 vs baseline 0.8000 (baseline file): Δ CI lies below -0.0200 "
            "[[]max_drop 0.02[]] (paired newcombe: Δ -0.0700, 95% CI [[]-0.1075, -0.0347[]], "
            "14 worse / 0 better of n=200 paired items)*"
        ]
    )
    assert _gate(report)["verdict"] == "fail"
    _, report = paired.run(baseline=paired.unpaired_copy())
    assert _gate(report)["verdict"] == "inconclusive"


def test_the_checklist_and_the_comparison_show_the_paired_verdict(paired):
    """The report renders the gate's Δ interval, method and discordant counts, and its
    comparison with the baseline file pairs on the file's per-item outcomes too."""
    paired.use("dropped", set(range(146)))
    md = paired.project.pytester.path / "gates.md"
    result = paired.project.run(f"--scaimind-baseline={paired.baseline}", f"--scaimind-report={md}")
    result.assert_outcomes(failed=1)
    text = md.read_text()
    [box] = [line for line in text.splitlines() if line.startswith("- [")]
    assert box.startswith("- [ ] `test_paired.py::test_no_drop_beyond_two_points`")
    assert (
        "Δ vs baseline -0.0700 in [-0.1075, -0.0347] (paired newcombe, 14 worse / 0 better)" in box
    )
    header = next(line for line in text.splitlines() if line.startswith("| # |"))
    assert "| Δ interval | method | discordant |" in header
    row = next(line for line in text.splitlines() if line.startswith("| 1 |"))
    assert "| [-0.1075, -0.0347] | paired newcombe | 14 worse / 0 better |" in row
    compared = text[text.index("### Compared with the baseline") :]
    assert "| [-0.1075, -0.0347] | paired newcombe | worse (14 worse / 0 better of 200" in compared


def test_a_noisy_candidate_is_inconclusive_with_the_n_that_would_decide(paired):
    import random

    rng = random.Random(4)
    lost = set(rng.sample(sorted(BASE_RIGHT), 30))
    gained = set(rng.sample(range(160, PAIRED), 28))
    paired.use("noisy", (BASE_RIGHT - lost) | gained)
    noisy, report = paired.run("--scaimind-inconclusive=skip", "-rs")
    noisy.assert_outcomes(skipped=1)
    gate = _gate(report)
    assert gate["verdict"] == "inconclusive" and gate["action"] == "skip"
    assert (gate["worse"], gate["better"]) == (30, 28)
    assert gate["n_needed"] > 10 * PAIRED
    noisy.stdout.fnmatch_lines(
        [f"*30 worse / 28 better of n=200 paired items*need n≈{gate['n_needed']:,} to decide*"]
    )


def test_a_live_baseline_pairs_through_the_samples_route(paired):
    entry = next(iter(json.loads(paired.baseline.read_text())["benchmarks"].items()))
    label_, stored = entry
    live = paired.baseline.with_name("live.json")
    live.write_text(
        json.dumps(
            {
                "format": FORMAT,
                "benchmarks": {label_: {"evaluation_id": stored["source"]["evaluation_id"]}},
            }
        )
    )
    paired.use("dropped", set(range(146)))
    result, report = paired.run(baseline=live)
    result.assert_outcomes(failed=1)
    gate = _gate(report)
    assert gate["method"] == "paired newcombe" and gate["worse"] == 14
    assert gate["baseline_source"]["kind"] == "live"
    assert gate["baseline_source"]["evaluation_id"] == stored["source"]["evaluation_id"]
    assert f"(evaluation {stored['source']['evaluation_id']})" in gate["message"]


def test_without_per_item_results_the_gate_falls_back_to_unpaired_and_says_so(paired):
    """A coordinator without the samples route (ScaiGrid today) answers 'not available'."""
    paired.project.pytester.makeconftest(
        """
import scaimind_nb

_real = scaimind_nb.Client.samples


def _none(self, evaluation_id, benchmark=None, **kwargs):
    raise scaimind_nb.SamplesNotAvailableError(evaluation_id, "the coordinator has no samples route")


def pytest_configure(config):
    scaimind_nb.Client.samples = _none


def pytest_unconfigure(config):
    scaimind_nb.Client.samples = _real
"""
    )
    label_, stored = next(iter(json.loads(paired.baseline.read_text())["benchmarks"].items()))
    live = paired.baseline.with_name("live.json")
    live.write_text(
        json.dumps(
            {
                "format": FORMAT,
                "benchmarks": {label_: {"evaluation_id": stored["source"]["evaluation_id"]}},
            }
        )
    )
    result, report = paired.run(baseline=live)
    result.assert_outcomes(failed=1)
    gate = _gate(report)
    assert gate["verdict"] == "inconclusive" and gate["paired"] is False
    assert (
        "unpaired: per-item outcomes are not available (the coordinator has no samples route)"
        in gate["message"]
    )


def test_the_power_warning_before_any_gpu_time(paired):
    # a second bless against a noisy model records how much two runs disagree
    import random

    rng = random.Random(4)
    noisy = (BASE_RIGHT - set(rng.sample(sorted(BASE_RIGHT), 30))) | set(
        rng.sample(range(160, PAIRED), 26)
    )
    paired.use("noisy", noisy)
    paired.run("--scaimind-update-baseline").__getitem__(0).assert_outcomes(passed=1)
    before = paired.project.submissions()
    collected = paired.project.run(f"--scaimind-baseline={paired.baseline}", "--collect-only")
    assert paired.project.submissions() == before
    warning = (
        "custom-paired@* n=200: max_drop 0.02 cannot be told from noise; the smallest drop this "
        "gate can detect at 95% is about 0.1* (from the baseline's per-item discordance 0.280); "
        "raise n or the margin"
    )
    collected.stdout.fnmatch_lines(["*scaimind verdict statistics*"])
    assert fnmatch.fnmatch(_unwrapped(collected), f"*power: {warning}*")
    md = paired.project.pytester.path / "gates.md"
    run = paired.project.run(f"--scaimind-baseline={paired.baseline}", f"--scaimind-report={md}")
    assert fnmatch.fnmatch(_unwrapped(run), f"*power: {warning}*")
    assert "cannot be told from noise" in md.read_text()
    _, report = paired.run()
    assert len(report["statistics"]["power_warnings"]) == 1
    assert (
        report["statistics"]["family_wise_error"]
        == "family-wise error: one confidence check, at most 5%"
    )


def test_a_malformed_baseline_file_stops_the_session_before_any_request(gate_project):
    gate_project.pytester.makepyfile(
        test_regress=f'''
from pytest_scaimind import assert_benchmark

def test_big():
    assert_benchmark("custom-big", dataset="{gate_project.big}", max_drop=0.01)
'''
    )
    path = gate_project.pytester.path / "baseline.json"
    spec_label = label(make_gate("custom-big", dataset=gate_project.big, spec_only=True).spec)
    path.write_text(
        json.dumps({"format": FORMAT, "benchmarks": {spec_label: {"metrics": {"exact_match": 95}}}})
    )
    result = gate_project.run(f"--scaimind-baseline={path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            f"*baseline {path}: entry '{spec_label}': metric 'exact_match' is a proportion*did you mean 0.95?"
        ]
    )
    assert gate_project.submissions() == 0
