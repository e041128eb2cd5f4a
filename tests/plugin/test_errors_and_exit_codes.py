"""ERROR is ERROR: pytest, JUnit and the gate table agree; exit codes; required gates; Holm."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest


def _suite(project, extra: str = "") -> None:
    project.pytester.makepyfile(
        test_release=f'''
import pytest
from pytest_scaimind import assert_benchmark

BIG = "{project.big}"

def test_literal():
    assert_benchmark("custom-big", dataset=BIG, min_score=0.9)

def test_run_time_spec():
    name = "custom-" + "qa"
    assert_benchmark(name, dataset="{project.qa}", min_score=0.5)

def test_not_a_gate():
    assert True
{extra}
'''
    )


def _junit(pytester: pytest.Pytester) -> dict[str, str]:
    """Each test case's JUnit outcome: error, failure, skipped or passed."""
    out = {}
    for case in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("error", "failure", "skipped")]
        out[case.get("name")] = kinds[0] if kinds else "passed"
    return out


def _down(project, *extra: str) -> pytest.RunResult:
    return project.pytester.runpytest(
        f"--scaimind-job={project.job_id}",
        f"--scaimind-model-uri={project.model_uri}",
        "--scaimind-host=http://127.0.0.1:9",
        "--junitxml=junit.xml",
        *extra,
    )


def test_coordinator_down_is_an_error_for_run_time_specs_too_and_exits_75(gate_project):
    _suite(gate_project)
    result = _down(gate_project)
    result.assert_outcomes(passed=1, errors=2)
    assert result.ret == 75
    assert _junit(gate_project.pytester) == {
        "test_literal": "error",
        "test_run_time_spec": "error",
        "test_not_a_gate": "passed",
    }
    result.stdout.fnmatch_lines(
        [
            "*test_literal*ERROR*",
            "*test_run_time_spec*ERROR*",
            "*every failure is an infrastructure error (2 test(s)): exit code 75*",
        ]
    )
    assert "FAILED" not in result.stdout.str()


def test_the_infra_exit_code_is_configurable_and_checked(gate_project, monkeypatch):
    _suite(gate_project)
    assert _down(gate_project, "--scaimind-infra-exit-code=1").ret == 1
    gate_project.pytester.makeini("[pytest]\nscaimind_infra_exit_code = 42\n")
    assert _down(gate_project).ret == 42
    gate_project.pytester.makeini("[pytest]\n")
    monkeypatch.setenv("SCAIMIND_INFRA_EXIT_CODE", "99")
    assert _down(gate_project).ret == 99
    monkeypatch.delenv("SCAIMIND_INFRA_EXIT_CODE")
    for bad in ("0", "3", "256", "x"):
        refused = _down(gate_project, f"--scaimind-infra-exit-code={bad}")
        assert refused.ret == pytest.ExitCode.USAGE_ERROR
        refused.stderr.fnmatch_lines(
            ["*--scaimind-infra-exit-code must be 1 or 6-255 (0 would hide the errors*"]
        )


def test_an_infra_error_beside_a_quality_failure_exits_1(gate_project):
    _suite(gate_project, "def test_fails():\n    assert 1 == 2\n")
    result = _down(gate_project)
    result.assert_outcomes(passed=1, failed=1, errors=2)
    assert result.ret == 1


def test_a_result_without_the_metric_is_an_error_in_pytest_and_the_table(gate_project):
    gate_project.pytester.makepyfile(
        test_metric=f'''
from pytest_scaimind import assert_benchmark

def test_f1():
    assert_benchmark("custom-big", dataset="{gate_project.big}", metric="f1", min_score=0.5)
'''
    )
    result = gate_project.run("--junitxml=junit.xml")
    result.assert_outcomes(errors=1)
    assert result.ret == 1  # not infrastructure: a retry will not help
    assert _junit(gate_project.pytester) == {"test_f1": "error"}
    result.stdout.fnmatch_lines(["*has no metric 'f1'; available: exact_match*", "*test_f1*ERROR*"])


def test_a_gate_without_a_criterion(gate_project):
    gate_project.pytester.makepyfile(
        test_literal="from pytest_scaimind import assert_benchmark\n"
        "def test_nothing():\n    assert_benchmark('mmlu')\n"
    )
    literal = gate_project.run()
    assert literal.ret == pytest.ExitCode.USAGE_ERROR
    literal.stderr.fnmatch_lines(
        [
            "*invalid benchmark gate arguments:*",
            "*test_literal.py::test_nothing: assert_benchmark('mmlu') sets no criterion: pass min_score=*",
        ]
    )
    assert gate_project.submissions() == 0
    gate_project.pytester.makepyfile(
        test_literal=f'''
from pytest_scaimind import assert_benchmark

def test_nothing_at_run_time():
    assert_benchmark("custom-" + "big", dataset="{gate_project.big}")
'''
    )
    dynamic = gate_project.run()
    dynamic.assert_outcomes(errors=1)
    assert dynamic.ret == 1
    dynamic.stdout.fnmatch_lines(["*assert_benchmark('custom-big') sets no criterion*"])


def test_require_gates_fails_a_session_that_judged_nothing(gate_project):
    _suite(gate_project)
    pytester = gate_project.pytester
    assert pytester.runpytest().ret == 0  # without a job every gate skips: green
    inactive = pytester.runpytest("--scaimind-require-gates")
    inactive.assert_outcomes(passed=1, skipped=2)
    assert inactive.ret == 1
    inactive.stdout.fnmatch_lines(
        ["*--scaimind-require-gates: this session judged no gate: --scaimind-job is not set*"]
    )
    deselected = gate_project.run("--scaimind-require-gates", "-k", "not_a_gate")
    deselected.assert_outcomes(passed=1)
    assert deselected.ret == 1
    deselected.stdout.fnmatch_lines(["*judged no gate: no gate test ran to a verdict*"])
    judged = gate_project.run("--scaimind-require-gates")
    judged.assert_outcomes(passed=3)
    assert judged.ret == 0
    assert pytester.runpytest("--scaimind-require-gates", "--collect-only").ret == 0


def test_require_gates_from_ini_and_what_happens_without_the_plugin(gate_project):
    _suite(gate_project)
    pytester = gate_project.pytester
    pytester.makeini("[pytest]\nscaimind_require_gates = true\n")
    assert pytester.runpytest().ret == 1
    # -p no:scaimind: the plugin is not loaded, so nothing can honour the ini key (pytest
    # only warns about an unknown key) and the flag is an unknown argument: a usage error
    unloaded = pytester.runpytest("-p", "no:scaimind")
    assert unloaded.ret == 0
    unloaded.stdout.fnmatch_lines(["*Unknown config option: scaimind_require_gates*"])
    flagged = pytester.runpytest("-p", "no:scaimind", "--scaimind-require-gates")
    assert flagged.ret == pytest.ExitCode.USAGE_ERROR


def _confidence_suite(project, gates: int) -> None:
    lines = [
        "import pytest",
        "from pytest_scaimind import assert_benchmark",
        "",
        f"@pytest.mark.parametrize('floor', {[round(0.55 + 0.019 * k, 3) for k in range(gates)]})",
        "def test_floor(floor):",
        f"    assert_benchmark('custom-big', dataset='{project.big}', min_score=floor, confidence=0.95)",
        "",
        "def test_dynamic():",
        f"    assert_benchmark('custom-big', dataset='{project.big}', min_score=0.5 + 0.01, confidence=0.95)",
    ]
    project.pytester.makepyfile(test_family="\n".join(lines) + "\n")


def test_holm_across_the_session_and_the_family_wise_error_either_way(gate_project):
    _confidence_suite(gate_project, 12)
    report = gate_project.pytester.path / "gates.json"
    plain = gate_project.run(f"--scaimind-report={report}", "-k", "floor")
    plain.assert_outcomes(passed=12)
    stats = json.loads(report.read_text())["statistics"]
    assert stats["correction"] == "none" and stats["confidence_checks"] == 12
    assert stats["family_wise_error"].startswith(
        "family-wise error: 12 confidence check(s) without correction: up to 46% chance"
    )
    # 19 of 20 right: the Wilson lower bound 0.764 clears every floor up to 0.759 at 95%, but
    # Holm across 12 checks asks more of each, so the highest floors are no longer decided
    corrected = gate_project.run(
        f"--scaimind-report={report}", "--scaimind-correction=holm", "-k", "floor"
    )
    gates = json.loads(report.read_text())
    verdicts = {g["criteria"]["min_score"]: g["verdict"] for g in gates["gates"]}
    assert verdicts[0.55] == "pass" and verdicts[0.759] == "inconclusive"
    assert all(g["family_size"] == 12 and g["correction"] == "holm" for g in gates["gates"])
    assert gates["statistics"]["family_wise_error"] == (
        "family-wise error: at most 5% across the session's 12 confidence checks "
        "(--scaimind-correction=holm, Holm-Bonferroni)"
    )
    corrected.stdout.fnmatch_lines(["*Holm over 12 checks: p=*not decisive*"])
    dynamic = gate_project.run("--scaimind-correction=holm", "-k", "dynamic")
    dynamic.assert_outcomes(errors=1)
    dynamic.stdout.fnmatch_lines(
        ["*--scaimind-correction=holm decides the confidence gates known at collection*"]
    )


@pytest.mark.slow
def test_under_xdist_the_controller_sees_the_errors_and_sets_the_exit_code(gate_project):
    _suite(gate_project)
    result = gate_project.pytester.runpytest_subprocess(
        f"--scaimind-job={gate_project.job_id}",
        f"--scaimind-model-uri={gate_project.model_uri}",
        "--scaimind-host=http://127.0.0.1:9",
        "-n",
        "2",
    )
    result.assert_outcomes(passed=1, errors=2)
    assert result.ret == 75
    result.stdout.fnmatch_lines(["*every failure is an infrastructure error (2 test(s))*"])
