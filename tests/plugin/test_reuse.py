"""Reuse by content, spec by spec, and bad specs failing alone before anything is submitted.

Every case runs pytest (pytester) against the live session coordinator and counts what was
submitted in its SQLite file.
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import GateProject


def _names(specs: list[dict]) -> list[str]:
    return [s["name"] + (f"[n={s['num_samples']}]" if s.get("num_samples") else "") for s in specs]


def _report(project: GateProject) -> list[dict]:
    data = json.loads((project.pytester.path / "r.json").read_text())
    return sorted(data["gates"], key=lambda g: g["test"])


def _three_of_four(project: GateProject) -> list[dict[str, Any]]:
    """The qa dataset without its fourth question (the one the model gets wrong): 1.0."""
    return project.rows(project.qa)[:3]


def test_a_dataset_edited_under_the_same_uri_is_not_reused_and_an_unchanged_one_is(
    gate_project: GateProject,
) -> None:
    gate_project.write_suite()
    gate_project.run().assert_outcomes(passed=5, failed=1)
    [first] = gate_project.evaluation_ids()
    unchanged = gate_project.run("--scaimind-report=r.json")
    unchanged.assert_outcomes(passed=5, failed=1)
    unchanged.stdout.fnmatch_lines([f"*evaluation {first} (reused, content-verified)"])
    assert {
        (g["evaluation_id"], g["reused"], g["content_verified"]) for g in _report(gate_project)
    } == {(first, True, True)}
    # the same URI now holds 3 questions the model answers: a new score, so a new evaluation
    original = gate_project.rows(gate_project.qa)
    gate_project.rewrite(gate_project.qa, _three_of_four(gate_project))
    edited = gate_project.run("--scaimind-report=r.json")
    edited.assert_outcomes(passed=6)  # qa is 1.0 now: the old 0.75 was not reused
    assert gate_project.submissions() == 2
    assert _names(gate_project.submitted()[1]) == ["custom-qa"]  # only the spec that changed
    second = gate_project.evaluation_ids()[1]
    served = {g["test"].split("::")[1]: g for g in _report(gate_project)}
    assert served["test_qa_fails"]["evaluation_id"] == second
    assert served["test_qa_fails"]["reused"] is False
    assert served["test_big_passes"]["evaluation_id"] == first
    assert served["test_big_passes"]["reused"] and served["test_big_passes"]["content_verified"]
    assert served["test_qa_fails"]["data"]["digest"] != served["test_big_passes"]["data"]["digest"]
    # without the cache, the listing finds the evaluation holding the *current* data
    gate_project.run("--cache-clear").assert_outcomes(passed=6)
    assert gate_project.submissions() == 2
    # back to the first content: the first evaluation's qa result serves again
    gate_project.rewrite(gate_project.qa, original)
    back = gate_project.run("--cache-clear", "--scaimind-report=r.json")
    back.assert_outcomes(passed=5, failed=1)
    assert gate_project.submissions() == 2
    assert {g["evaluation_id"] for g in _report(gate_project)} == {first}


def test_a_model_whose_weights_changed_under_the_same_uri_is_not_reused(
    gate_project: GateProject,
) -> None:
    gate_project.write_suite()
    gate_project.run().assert_outcomes(passed=5, failed=1)
    # same URI, retrained: it now answers the fourth qa question too (its default answer)
    gate_project.model(gate_project.model_uri, default="r3")
    retrained = gate_project.run()
    retrained.assert_outcomes(passed=6)
    assert gate_project.submissions() == 2
    second = gate_project.evaluation_ids()[1]
    retrained.stdout.fnmatch_lines([f"*evaluation {second}*"])
    assert f"evaluation {second} (reused" not in retrained.stdout.str()
    assert _names(gate_project.submitted()[1]) == ["custom-big", "custom-qa"]
    gate_project.run("--cache-clear").assert_outcomes(passed=6)
    assert gate_project.submissions() == 2


def test_a_k_subset_is_served_from_a_larger_evaluation(gate_project: GateProject) -> None:
    gate_project.write_suite()
    gate_project.run().assert_outcomes(passed=5, failed=1)
    [first] = gate_project.evaluation_ids()
    for args in (("-k", "qa"), ("-k", "qa", "--cache-clear")):
        subset = gate_project.run(*args, "--scaimind-report=r.md")
        subset.assert_outcomes(passed=1, failed=1, deselected=4)
        subset.stdout.fnmatch_lines([f"*evaluation {first} (reused, content-verified)"])
        checklist = (gate_project.pytester.path / "r.md").read_text()
        assert f"`{first}` (reused, content-verified)" in checklist
    assert gate_project.submissions() == 1


def test_a_changed_num_samples_on_one_gate_submits_only_that_spec(
    gate_project: GateProject,
) -> None:
    gate_project.write_suite()
    gate_project.run().assert_outcomes(passed=5, failed=1)
    gate_project.write_suite(big_n=10)
    gate_project.run().assert_outcomes(passed=5, failed=1)
    assert [_names(s) for s in gate_project.submitted()] == [
        ["custom-big", "custom-qa"],
        ["custom-big[n=10]"],
    ]
    gate_project.run().assert_outcomes(passed=5, failed=1)
    assert gate_project.submissions() == 2


@pytest.mark.parametrize(
    ("gate", "reason"),
    [
        (
            'assert_benchmark("humanevall", min_score=0.1)',
            "unknown benchmark 'humanevall'; this coordinator knows: custom-*, humaneval, mmlu "
            "(precheck of humanevall; not submitted)",
        ),
        (
            'assert_benchmark("custom-bad", dataset=BAD, min_score=0.1)',
            "scaidrive://*bad-*.jsonl line 2 is not valid JSON: * (precheck of "
            "custom-bad@scaidrive://*bad-*.jsonl; not submitted)",
        ),
        (
            'assert_benchmark("custom-gone", dataset=GONE, min_score=0.1)',
            "'scaidrive://*gone-*.jsonl' does not exist on this coordinator (precheck of "
            "custom-gone@*; not submitted)",
        ),
    ],
    ids=["typo", "malformed-line", "missing-dataset"],
)
def test_one_bad_spec_errors_alone_and_is_never_submitted(
    gate_project: GateProject, unique: str, gate: str, reason: str
) -> None:
    bad = gate_project.coordinator.drive_root / f"org/eval/bad-{unique}.jsonl"
    bad.write_text('{"prompt": "p0?", "reference": "r0"}\n{"prompt": oops}\n')
    gate_project.write_suite(
        extra=f"""
BAD = "scaidrive://org/eval/bad-{unique}.jsonl"
GONE = "scaidrive://org/eval/gone-{unique}.jsonl"

def test_bad_gate():
    {gate}
""",
    )
    result = gate_project.run("-rE")
    result.assert_outcomes(passed=5, failed=1, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_bad_gate*", f"scaimind: {reason}"])
    result.stdout.fnmatch_lines(["ERROR test_release.py::test_bad_gate - *"])
    assert [_names(s) for s in gate_project.submitted()] == [["custom-big", "custom-qa"]]


def test_an_unresolvable_model_errors_every_gate_and_submits_nothing(
    gate_project: GateProject,
) -> None:
    gate_project.write_suite()
    result = gate_project.run("--scaimind-model-uri=scaidrive://org/models/nowhere")
    result.assert_outcomes(passed=1, errors=5)
    assert result.ret == 1  # a precheck's refusal is not an infrastructure error: no retry (75)
    result.stdout.fnmatch_lines(
        [
            "scaimind: no model at scaidrive://org/models/nowhere: expected a folder holding "
            "scaimind-model.json (precheck of custom-big@*; not submitted)"
        ]
    )
    assert gate_project.submissions() == 0


def test_a_failed_evaluation_judges_the_specs_it_holds_and_a_rerun_resubmits_only_the_failed_one(
    gate_project: GateProject,
) -> None:
    chat = 'assert_benchmark("humaneval", parameters={"prompt_mode": "chat"}, min_score=0.1)'
    gate_project.write_suite(extra=f"\ndef test_chat():\n    {chat}\n")
    first = gate_project.run("--scaimind-report=r.json")
    first.assert_outcomes(passed=5, failed=1, errors=1)  # every other gate is judged
    [failed] = gate_project.evaluation_ids()
    assert gate_project.status(failed) == "FAILED"
    first.stdout.fnmatch_lines(
        [
            f"scaimind: humaneval{{prompt_mode=chat}} failed in evaluation {failed}: humaneval: "
            "prompt_mode=chat needs a chat model*"
        ]
    )
    errored = next(g for g in _report(gate_project) if g["test"].endswith("test_chat"))
    assert errored["verdict"] == "error" and errored["evaluation_id"] == failed
    rerun = gate_project.run()
    rerun.assert_outcomes(passed=5, failed=1, errors=1)
    assert [_names(s) for s in gate_project.submitted()] == [
        ["custom-big", "custom-qa", "humaneval"],
        ["humaneval"],
    ]
    rerun.stdout.fnmatch_lines([f"*evaluation *{failed} (reused, content-verified)*"])


def test_against_a_coordinator_without_the_precheck_reuse_falls_back_to_uris(
    gate_project: GateProject, front: Any
) -> None:
    older = front(refuse=("/precheck",))
    gate_project.write_suite(
        extra="\ndef test_typo():\n    assert_benchmark('humanevall', min_score=0.1)\n",
    )
    first = gate_project.run(f"--scaimind-host={older.url}")
    first.assert_outcomes(passed=5, failed=1, errors=1)
    first.stdout.fnmatch_lines(
        [
            "scaimind: unknown benchmark 'humanevall'; http://127.0.0.1:* knows: custom-*, "
            "humaneval, mmlu (checked against its benchmarks route; humanevall not submitted)"
        ]
    )
    assert older.calls("/precheck") == 1 and older.calls("/benchmarks") == 1
    [evaluation_id] = gate_project.evaluation_ids()
    second = gate_project.run(f"--scaimind-host={older.url}", "--scaimind-report=r.json")
    second.assert_outcomes(passed=5, failed=1, errors=1)
    second.stdout.fnmatch_lines([f"*evaluation {evaluation_id} (reused, not content-verified)"])
    gates = [g for g in _report(gate_project) if g["verdict"] != "error"]
    assert {(g["reused"], g["content_verified"]) for g in gates} == {(True, False)}
    # what a URI key cannot see: the same URI with other content is still reused
    gate_project.rewrite(gate_project.qa, _three_of_four(gate_project))
    gate_project.run(f"--scaimind-host={older.url}").assert_outcomes(passed=5, failed=1, errors=1)
    assert gate_project.submissions() == 1
    # the same coordinator with its precheck refuses that stale result
    gate_project.run().assert_outcomes(passed=6, errors=1)
    assert gate_project.submissions() == 2


def test_without_a_precheck_a_malformed_dataset_is_found_by_the_submit_alone(
    gate_project: GateProject, front: Any, unique: str
) -> None:
    older = front(refuse=("/precheck",))
    bad = f"scaidrive://org/eval/bad-{unique}.jsonl"
    (gate_project.coordinator.drive_root / bad.removeprefix("scaidrive://")).write_text("oops\n")
    gate_project.write_suite(
        extra=f"\ndef test_bad():\n    assert_benchmark('custom-bad', dataset='{bad}', min_score=0.1)\n"
    )
    result = gate_project.run(f"--scaimind-host={older.url}")
    # the one evaluation it would have joined is refused whole: every gate errors, nothing queued
    result.assert_outcomes(passed=1, errors=6)
    result.stdout.fnmatch_lines(["*HTTP 400: *line 1 is not valid JSON*"])
    assert gate_project.submissions() == 0


def test_a_stale_cache_entry_and_an_evaluation_of_another_coordinator_are_not_reused(
    gate_project: GateProject, fresh_coordinator: Any
) -> None:
    from scaimind_local.testing import write_custom_dataset

    gate_project.write_suite()
    gate_project.run().assert_outcomes(passed=5, failed=1)
    [first] = gate_project.evaluation_ids()
    gate_project.rewrite(gate_project.qa, _three_of_four(gate_project))
    gate_project.run().assert_outcomes(passed=6)
    second = gate_project.evaluation_ids()[1]
    # point every cache entry (big; qa before and after the edit) at the first evaluation,
    # whose qa digest is the old one
    entries = list((gate_project.pytester.path / ".pytest_cache/v/scaimind/reuse/v2").iterdir())
    assert len(entries) == 3
    for entry in entries:
        entry.write_text(json.dumps({"evaluation_id": first}))
    gate_project.run("--scaimind-report=r.json").assert_outcomes(passed=6)
    assert gate_project.submissions() == 2
    served = {g["test"].split("::")[1]: g["evaluation_id"] for g in _report(gate_project)}
    assert served["test_qa_fails"] == second and served["test_big_passes"] == first
    # another coordinator (its own store) holding the same URIs: nothing of this one is reused
    other = fresh_coordinator
    for uri in (gate_project.big, gate_project.qa):
        write_custom_dataset(other.drive_root, uri, gate_project.rows(uri))
    manifest = gate_project.model_uri.removeprefix("scaidrive://") + "/scaimind-model.json"
    (other.drive_root / manifest).parent.mkdir(parents=True)
    (other.drive_root / manifest).write_bytes(
        (gate_project.coordinator.drive_root / manifest).read_bytes()
    )
    other.register_job(gate_project.job_id, gate_project.model_uri)
    gate_project.run(f"--scaimind-host={other.url}").assert_outcomes(passed=6)
    with sqlite3.connect(other.db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0] == 1
    assert gate_project.submissions() == 2
