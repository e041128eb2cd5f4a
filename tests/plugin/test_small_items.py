"""Issue 13's smaller items, end to end: percentages, call shapes, name=, the xdist hand-off folder."""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest


def test_a_percentage_threshold_on_a_proportion_is_refused_with_the_fix(gate_project):
    gate_project.pytester.makepyfile(
        test_percent=f'''
from pytest_scaimind import assert_benchmark

def test_percent():
    assert_benchmark("custom-big", dataset="{gate_project.big}", min_score=60)

def test_drop_in_points():
    assert_benchmark("custom-big", dataset="{gate_project.big}", max_drop=2)
'''
    )
    result = gate_project.run("--scaimind-report=r.json", "-rE")
    result.assert_outcomes(errors=2)  # a gate that cannot be judged is an ERROR, not a FAIL
    result.stdout.fnmatch_lines(
        [
            "*min_score=60 is a percentage, but exact_match is a proportion in [[]0, 1[]]: "
            "did you mean min_score=0.6?*",
            "*max_drop=2 is a percentage*did you mean max_drop=0.02?*",
        ]
    )
    gates = json.loads((gate_project.pytester.path / "r.json").read_text())["gates"]
    assert {g["verdict"] for g in gates} == {"error"}
    assert all(g["evaluation_id"] for g in gates)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            "assert_benchmark()",
            "*test_shape.py::test_shape: assert_benchmark needs a benchmark name*",
        ),
        (
            'assert_benchmark("custom-big", 0.9)',
            "*test_shape.py::test_shape: assert_benchmark takes only the benchmark name positionally*",
        ),
    ],
)
def test_calls_that_cannot_work_are_usage_errors_before_any_request(gate_project, call, message):
    gate_project.pytester.makepyfile(
        test_shape=f"from pytest_scaimind import assert_benchmark\n\ndef test_shape():\n    {call}\n"
    )
    result = gate_project.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])
    assert gate_project.submissions() == 0


def test_a_name_keyword_joins_the_session_batch(gate_project):
    gate_project.pytester.makepyfile(
        test_kw=f'''
from pytest_scaimind import assert_benchmark

def test_positional():
    assert_benchmark("custom-big", dataset="{gate_project.big}", min_score=0.9)

def test_keyword():
    assert_benchmark(name="custom-qa", dataset="{gate_project.qa}", min_score=0.7)
'''
    )
    gate_project.run().assert_outcomes(passed=2)
    assert gate_project.submissions() == 1  # one evaluation with both specs, not one each


def _reporter(xdist_run: str | None) -> object:
    from pytest_scaimind._reporting import Reporter

    session = types.SimpleNamespace(
        options=types.SimpleNamespace(history=None, compare=None),
        config=types.SimpleNamespace(rootpath=Path.cwd()),
        is_worker=False,
    )
    reporter = Reporter(session)  # type: ignore[arg-type]
    reporter.xdist_run = xdist_run
    return reporter


def test_the_controller_removes_the_xdist_hand_off_folder_and_nothing_else(tmp_path, monkeypatch):
    import tempfile

    from pytest_scaimind._evaluations import handoff_dir

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folder = handoff_dir("0123abcd")
    folder.mkdir(parents=True)
    (folder / "key.claim").touch()
    neighbour = handoff_dir("another-run")
    neighbour.mkdir()
    _reporter("0123abcd").remove_handoff_dir()
    assert not folder.exists() and neighbour.exists()
    # a hostile --testrunuid names nothing outside the hand-off root
    victim = tmp_path / "victim"
    victim.mkdir()
    for run in ("../../victim", "..", "/etc", "a/../../victim", ""):
        _reporter(run).remove_handoff_dir()
    assert victim.exists() and neighbour.exists()
    _reporter("another-run").remove_handoff_dir()
    assert not (tmp_path / "pytest-scaimind").exists()  # the empty root goes too
