"""The terminal: an 80-column summary (in full with -v), short-summary lines that keep the cause."""

from __future__ import annotations

import pytest

LONG = "scaidrive://org/eval/a-rather-long-folder/and-a-subfolder"


def _long_suite(project) -> None:
    project.pytester.makepyfile(
        test_long_names=f'''
import pytest
from pytest_scaimind import assert_benchmark

PARAMS = {{"max_new_tokens": "256", "temperature": "0.0", "match": "exact", "tolerance": "0.000001"}}

def test_support_answers_for_the_enterprise_customers_in_every_region():
    assert_benchmark("custom-big", dataset="{project.big}", parameters=PARAMS, min_score=0.9)

@pytest.mark.parametrize("floor", [0.5, 0.55, 0.6])
def test_the_question_answering_set_stays_above_its_floor_release_after_release(floor):
    assert_benchmark("custom-qa", dataset="{project.qa}", parameters=PARAMS, min_score=floor)
'''
    )


def _summary(result: pytest.RunResult) -> list[str]:
    lines = result.outlines
    start = next(i for i, line in enumerate(lines) if "scaimind quality gates" in line)
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("====="))
    return lines[start:end]


@pytest.mark.parametrize("columns", [80, 120])
def test_the_summary_fits_the_terminal_width(gate_project, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    _long_suite(gate_project)
    result = gate_project.run()
    result.assert_outcomes(passed=4)
    summary = _summary(result)
    assert max(len(line) for line in summary) <= columns, "\n".join(summary)
    assert sum("PASS" in line for line in summary) == 4
    # the parameter set is abbreviated nowhere but in the tag legend, cut only there
    text = "\n".join(summary)
    assert "b1 custom-big@big-" in text and "b2 custom-qa@qa-" in text


def test_verbose_shows_labels_and_tests_in_full(gate_project, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    _long_suite(gate_project)
    result = gate_project.run("-v")
    result.assert_outcomes(passed=4)
    text = "\n".join(_summary(result))
    assert (
        f"custom-big@{gate_project.big}{{match=exact,max_new_tokens=256,temperature=0.0,tolerance=0.000001}}"
        in text
    )
    assert (
        "test_long_names.py::test_the_question_answering_set_stays_above_its_floor_release_after_release[0.55]"
        in text
    )
    assert "…" not in text


@pytest.mark.parametrize("on_ci", [False, True], ids=["terminal", "ci"])
def test_short_summary_lines_start_with_the_cause(gate_project, monkeypatch, on_ci):
    monkeypatch.setenv("COLUMNS", "80")
    # pytest trims short-summary lines to the terminal only when it is not on CI
    # (CI or BUILD_NUMBER set); on CI the whole cause stays on the line.
    for name in ("CI", "BUILD_NUMBER"):
        monkeypatch.delenv(name, raising=False)
    if on_ci:
        monkeypatch.setenv("CI", "1")
    gate_project.pytester.makepyfile(
        test_cause=f'''
from pytest_scaimind import assert_benchmark

def test_big():
    assert_benchmark("custom-big", dataset="{gate_project.big}", min_score=0.9)

def test_runtime():
    assert_benchmark("custom-" + "qa", dataset="{gate_project.qa}", min_score=0.5)
'''
    )
    missing_model = "scaidrive://org/models/not-there"
    result = gate_project.run(f"--scaimind-model-uri={missing_model}", "-ra")
    result.assert_outcomes(errors=2)  # ERROR, known at collection or at run time
    summary = [line for line in result.outlines if line.startswith(("ERROR ", "FAILED "))]
    assert len(summary) == 2
    for line in summary:
        if on_ci:
            assert line.endswith("not submitted)"), line
        else:
            assert len(line) <= 80
        assert " - scaimind: no model at" in line, line
        assert "GateError" not in line  # the cause, not the exception class
    # the precheck refused the model: a problem of the request, not of the infrastructure
    assert "(an infrastructure error, not a quality verdict)" not in result.stdout.str()
    assert result.ret == 1
