"""The local gate history and --scaimind-compare against history entries, evaluations and jobs."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from pytest_scaimind import _report
from pytest_scaimind._history import History, HistoryError, new_run_id


def _entry(run_id: str, **extra) -> dict:
    return {"format": "scaimind-report/1", "run_id": run_id, "gates": [], **extra}


# -- the file ---------------------------------------------------------------------------------


def test_find_by_index_run_id_and_unique_prefix(tmp_path):
    history = History(tmp_path / "h" / "history.jsonl")
    assert history.entries() == []
    for run_id in ("20261201T100000Z-aaaaaa", "20261201T110000Z-bbbbbb", "20261202T090000Z-cccccc"):
        history.append(_entry(run_id))
    assert history.find("-1")["run_id"] == "20261202T090000Z-cccccc"
    assert history.find("-3")["run_id"] == "20261201T100000Z-aaaaaa"
    assert history.find("20261201T110000Z-bbbbbb")["run_id"].endswith("bbbbbb")
    assert history.find("20261202")["run_id"].endswith("cccccc")
    assert history.find("eval_0123") is None  # not a history reference: maybe an evaluation
    with pytest.raises(HistoryError, match="2 history runs start with it"):
        history.find("20261201")
    with pytest.raises(HistoryError, match="holds 3 session"):
        history.find("-4")


def test_unreadable_lines_are_skipped_not_fatal(tmp_path):
    path = tmp_path / "history.jsonl"
    history = History(path)
    history.append(_entry("20261201T100000Z-aaaaaa"))
    with path.open("a") as fh:
        fh.write('{"format": "scaimind-report/1", "run_id": "trunc\n')  # a crash mid-write
        fh.write("\n[1, 2]\n")
        fh.write(json.dumps({"format": "something-else/9"}) + "\n")
    history.append(_entry("20261201T110000Z-bbbbbb"))
    assert [e["run_id"] for e in history.entries()] == [
        "20261201T100000Z-aaaaaa",
        "20261201T110000Z-bbbbbb",
    ]
    assert history.skipped == 3


def test_a_created_default_folder_is_git_ignored_only_when_asked(tmp_path):
    History(tmp_path / ".scaimind" / "history.jsonl", gitignore=True).append(_entry("r1"))
    assert (tmp_path / ".scaimind" / ".gitignore").read_text().splitlines()[-1] == "*"
    History(tmp_path / "reports" / "history.jsonl").append(_entry("r2"))
    assert not (tmp_path / "reports" / ".gitignore").exists()


def _append_many(path: str, worker: int) -> None:
    history = History(Path(path))
    for i in range(40):
        # large lines: a torn or interleaved write would show as an unparseable line
        history.append(_entry(f"w{worker}-{i}", padding="x" * 60_000))


def test_concurrent_sessions_never_interleave_their_lines(tmp_path):
    path = tmp_path / "history.jsonl"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_many, args=(str(path), w)) for w in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    history = History(path)
    entries = history.entries()
    assert history.skipped == 0
    assert sorted(e["run_id"] for e in entries) == sorted(
        f"w{w}-{i}" for w in range(4) for i in range(40)
    )


def test_run_ids_sort_by_time_and_do_not_collide():
    ids = {new_run_id() for _ in range(500)}
    assert len(ids) == 500
    assert all(len(i) == len("20261201T100000Z-aaaaaa") for i in ids)


# -- sessions ---------------------------------------------------------------------------------


def _suite(project) -> None:
    project.pytester.makepyfile(
        test_release=f'''
import pytest
from pytest_scaimind import assert_benchmark

def test_big():
    assert_benchmark("custom-big", dataset="{project.big}", min_score=0.9)

def test_qa():
    assert_benchmark("custom-qa", dataset="{project.qa}", min_score=0.7)
'''
    )


def _worse_model(project, unique: str) -> str:
    """A model that gets 15 of the 20 big questions right (0.95 -> 0.75) and qa unchanged."""
    answers = {f"q{i}?": f"a{i}" for i in range(15)} | {f"p{i}?": f"r{i}" for i in range(3)}
    return project.model(f"org/models/worse-{unique}", answers=answers)


def test_every_session_is_appended_and_validates(gate_project):
    _suite(gate_project)
    gate_project.run().assert_outcomes(passed=2)
    gate_project.run().assert_outcomes(passed=2)
    folder = gate_project.pytester.path / ".scaimind"
    history = History(folder / "history.jsonl")
    entries = history.entries()
    assert len(entries) == 2 and entries[0]["run_id"] != entries[1]["run_id"]
    assert (folder / ".gitignore").exists()
    import jsonschema

    schema = json.loads(_report.SCHEMA.read_text())
    for entry in entries:
        jsonschema.validate(entry, schema)
        assert [g["test"] for g in entry["gates"]] == [
            "test_release.py::test_big",
            "test_release.py::test_qa",
        ]


def test_history_can_be_moved_by_ini_key_or_switched_off(gate_project):
    _suite(gate_project)
    sub = gate_project.pytester.mkdir("suite")
    (gate_project.pytester.path / "test_release.py").rename(sub / "test_release.py")
    (sub / "pytest.ini").write_text("[pytest]\nscaimind_history = records/gates.jsonl\n")
    gate_project.run("suite").assert_outcomes(passed=2)
    assert len(History(sub / "records" / "gates.jsonl").entries()) == 1  # the ini file's folder
    result = gate_project.run("suite", "--scaimind-history=none")
    result.assert_outcomes(passed=2)
    assert "history:" not in result.stdout.str()
    assert len(History(sub / "records" / "gates.jsonl").entries()) == 1


def test_compare_with_the_previous_session_pairs_items(gate_project, unique):
    _suite(gate_project)
    gate_project.run().assert_outcomes(passed=2)
    gate_project.coordinator.register_job(gate_project.job_id, _worse_model(gate_project, unique))
    result = gate_project.run("--scaimind-compare=-1", "--scaimind-report=release.json", "-rN")
    result.assert_outcomes(passed=1, failed=1)
    [first_run] = History(gate_project.pytester.path / ".scaimind" / "history.jsonl").entries()[:1]
    result.stdout.fnmatch_lines(
        [
            f"compared with history run {first_run['run_id']} (*)",
            "test*then*now*Δ*change*",
            "test_big*0.9500*0.7500*-0.2000*worse*",
            "test_qa*0.7500*0.7500*+0.0000*",
        ]
    )
    data = json.loads((gate_project.pytester.path / "release.json").read_text())
    comparison = data["comparison"]
    assert comparison["reference"]["kind"] == "history"
    assert comparison["reference"]["run_id"] == first_run["run_id"]
    big = comparison["rows"][0]
    assert big["paired"] is True and big["method"].startswith("paired newcombe")
    assert big["note"] == "4 worse / 0 better of 20 paired items"
    assert big["then_verdict"] == "pass" and big["now_verdict"] == "fail"
    assert big["high"] < 0 and big["change"] == "worse"
    # by the shortest prefix of the run id that no other run shares (runs of one second share
    # the timestamp part), the same entry
    run_ids = [
        entry["run_id"]
        for entry in History(gate_project.pytester.path / ".scaimind" / "history.jsonl").entries()
    ]
    prefix = next(
        first_run["run_id"][:n]
        for n in range(len("20261201T193730Z-") + 1, len(first_run["run_id"]) + 1)
        if sum(run_id.startswith(first_run["run_id"][:n]) for run_id in run_ids) == 1
    )
    assert len(prefix) < len(first_run["run_id"])
    again = gate_project.run(f"--scaimind-compare={prefix}")
    again.stdout.fnmatch_lines([f"compared with history run {first_run['run_id']} (*)"])


def test_compare_with_an_evaluation_or_a_job(gate_project, unique):
    _suite(gate_project)
    gate_project.run().assert_outcomes(passed=2)
    [previous] = gate_project.evaluation_ids()
    previous_job = f"job_previous_{unique}"
    gate_project.coordinator.register_job(previous_job, gate_project.model_uri)
    gate_project.run(f"--scaimind-job={previous_job}").assert_outcomes(passed=2)
    gate_project.coordinator.register_job(gate_project.job_id, _worse_model(gate_project, unique))

    by_evaluation = gate_project.run(f"--scaimind-compare={previous}", "--scaimind-history=none")
    by_evaluation.stdout.fnmatch_lines(
        [f"compared with evaluation {previous} (model *)", "test_big*0.9500*0.7500*worse*"]
    )
    by_job = gate_project.run(f"--scaimind-compare={previous_job}", "--scaimind-report=r.md")
    by_job.stdout.fnmatch_lines(
        [f"compared with job {previous_job} (*)", "test_big*0.9500*0.7500*worse*"]
    )
    text = (gate_project.pytester.path / "r.md").read_text()
    assert f"### Compared with job {previous_job}" in text
    assert "| 0.9500 | 0.7500 | -0.2000 |" in text


def test_compare_with_nothing_known_says_so_and_changes_no_verdict(gate_project):
    _suite(gate_project)
    result = gate_project.run("--scaimind-compare=eval_does_not_exist")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["not compared: --scaimind-compare=eval_does_not_exist names no history entry*"]
    )
    missing = gate_project.run("--scaimind-compare=-3")
    assert missing.ret == pytest.ExitCode.USAGE_ERROR
    missing.stderr.fnmatch_lines(["*--scaimind-compare=-3: the history * holds 1 session(s)*"])


def test_an_interrupted_session_is_marked_and_not_appended(gate_project):
    gate_project.pytester.makepyfile(
        test_stop=f'''
from pytest_scaimind import assert_benchmark

def test_big():
    assert_benchmark("custom-big", dataset="{gate_project.big}", min_score=0.9)

def test_ctrl_c():
    raise KeyboardInterrupt

def test_qa():
    assert_benchmark("custom-qa", dataset="{gate_project.qa}", min_score=0.7)
'''
    )
    result = gate_project.pytester.runpytest(
        *gate_project.args("--scaimind-report=release.md"), no_reraise_ctrlc=True
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["history: not appended, the session was interrupted"])
    assert not (gate_project.pytester.path / ".scaimind" / "history.jsonl").exists()
    text = (gate_project.pytester.path / "release.md").read_text()
    assert text.startswith("## Model release gates: 1 of 1 passed — SESSION INTERRUPTED")
