"""One evaluation per session, reuse, resume, pass/fail/error verdicts, against a live coordinator."""

from __future__ import annotations

import pytest


def test_one_submission_for_the_session_and_none_on_rerun(gate_project):
    gate_project.write_suite()
    first = gate_project.run()
    first.assert_outcomes(passed=5, failed=1)
    assert gate_project.submissions() == 1
    [evaluation_id] = gate_project.evaluation_ids()
    line = next(ln for ln in first.outlines if "custom-qa" in ln and "< 0.8000" in ln)
    for part in ("exact_match 0.7500", "min_score 0.8", "delta -0.0500", "n=4", evaluation_id):
        assert part in line
    assert f"evaluation {evaluation_id} (reused" not in first.stdout.str()
    second = gate_project.run()
    second.assert_outcomes(passed=5, failed=1)
    second.stdout.fnmatch_lines([f"evaluation {evaluation_id} (reused, content-verified)*"])
    assert gate_project.submissions() == 1


def test_reuse_from_the_listing_when_the_cache_is_gone(gate_project):
    gate_project.write_suite()
    gate_project.run().assert_outcomes(passed=5, failed=1)
    gate_project.run("--cache-clear").assert_outcomes(passed=5, failed=1)
    assert gate_project.submissions() == 1
    gate_project.run("--scaimind-reuse=never").assert_outcomes(passed=5, failed=1)
    assert gate_project.submissions() == 2


def test_reuse_only_errors_when_nothing_matches(gate_project):
    gate_project.write_suite()
    result = gate_project.run("--scaimind-reuse=only")
    result.assert_outcomes(passed=1, errors=5)
    result.stdout.fnmatch_lines(
        ["*--scaimind-reuse=only: no evaluation of job * holds custom-big@* with the same content*"]
    )
    assert gate_project.submissions() == 0


def test_timeout_errors_in_setup_and_a_rerun_resumes_the_same_evaluation(gate_project, unique):
    slow = gate_project.model(f"org/models/slow-{unique}", delay=0.1)
    gate_project.coordinator.register_job(gate_project.job_id, slow)
    gate_project.write_suite()
    interrupted = gate_project.run("--scaimind-timeout=0.3")
    interrupted.assert_outcomes(passed=1, errors=5)
    [evaluation_id] = gate_project.evaluation_ids()
    interrupted.stdout.fnmatch_lines(
        [f"*evaluation {evaluation_id} still * after --scaimind-timeout=0.3s*"]
    )
    resumed = gate_project.run("--scaimind-timeout=60")
    resumed.assert_outcomes(passed=5, failed=1)
    assert gate_project.evaluation_ids() == [evaluation_id]


def test_failed_evaluation_is_an_error_with_the_reason(gate_project, unique):
    broken = gate_project.model(f"org/models/broken-{unique}", fail="GPU fell off the bus")
    gate_project.coordinator.register_job(gate_project.job_id, broken)
    gate_project.write_suite()
    result = gate_project.run()
    result.assert_outcomes(passed=1, errors=5)
    [evaluation_id] = gate_project.evaluation_ids()
    result.stdout.fnmatch_lines(
        [f"*custom-big@* failed in evaluation {evaluation_id}: RuntimeError: GPU fell off the bus*"]
    )
    # it holds no result for any spec, so it serves none: the next run submits a fresh one
    gate_project.run()
    assert gate_project.submissions() == 2


def test_unreachable_coordinator_is_an_error_not_a_failure(gate_project):
    gate_project.write_suite()
    result = gate_project.pytester.runpytest(
        f"--scaimind-job={gate_project.job_id}",
        f"--scaimind-model-uri={gate_project.model_uri}",
        "--scaimind-host=http://127.0.0.1:9",
    )
    result.assert_outcomes(passed=1, errors=5)
    result.stdout.fnmatch_lines(["*cannot reach the coordinator at http://127.0.0.1:9*"])


def test_without_job_gates_skip_with_a_reason_naming_the_option(gate_project):
    gate_project.write_suite()
    result = gate_project.pytester.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=5)
    result.stdout.fnmatch_lines(["*pass --scaimind-job JOB_ID*"])
    assert "scaimind quality gates" not in result.stdout.str()
    assert gate_project.submissions() == 0


def test_model_uri_comes_from_the_job_or_is_a_usage_error(gate_project, unique):
    gate_project.write_suite()
    result = gate_project.pytester.runpytest(
        *gate_project.args(f"--scaimind-job=job_missing_{unique}")[1:]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*job_missing_*--scaimind-model-uri=URI*"])


def test_checkpoint_is_part_of_the_request_and_of_reuse(gate_project):
    gate_project.write_suite()
    gate_project.run().assert_outcomes(passed=5, failed=1)
    gate_project.run("--scaimind-checkpoint=ckpt-500").assert_outcomes(passed=5, failed=1)
    assert gate_project.submissions() == 2
    import sqlite3

    with sqlite3.connect(gate_project.coordinator.db_path) as conn:
        checkpoints = {
            r[0]
            for r in conn.execute(
                "SELECT checkpoint_id FROM evaluations WHERE job_id = ?", (gate_project.job_id,)
            )
        }
    assert checkpoints == {"", "ckpt-500"}


def test_dynamic_and_marked_gates_and_same_name_specs(gate_project):
    gate_project.pytester.makepyfile(
        test_dynamic=f'''
import pytest
from pytest_scaimind import assert_benchmark

SPECS = {{"big": "{gate_project.big}"}}

@pytest.mark.scaimind("custom-big", dataset=SPECS["big"], num_samples=10)
def test_marked():
    assert_benchmark("custom-big", dataset=SPECS["big"], num_samples=10, min_score=0.9)

def test_runtime_only():
    name = "custom-" + "qa"
    assert_benchmark(name, dataset="{gate_project.qa}", min_score=0.7)

def test_same_name_other_spec():
    assert_benchmark("custom-big", dataset="{gate_project.big}", min_score=0.9)
'''
    )
    result = gate_project.run()
    result.assert_outcomes(passed=3)
    # marked n=10 and full spec share a name: two batched evaluations; the runtime-only spec a third
    assert gate_project.submissions() == 3
    gate_project.run().assert_outcomes(passed=3)
    assert gate_project.submissions() == 3


def test_bad_literal_arguments_are_a_usage_error_before_any_request(gate_project):
    gate_project.pytester.makepyfile(
        test_bad="""
from pytest_scaimind import assert_benchmark

def test_custom_without_dataset():
    assert_benchmark("custom-acme", min_score=0.5)
"""
    )
    result = gate_project.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_bad.py::test_custom_without_dataset*needs a dataset*"])
    assert gate_project.submissions() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--scaimind-timeout=soon"],
            "*--scaimind-timeout must be a number of seconds, got 'soon'*",
        ),
        (["--scaimind-report=out.txt"], "*--scaimind-report must end in .md or .json*"),
        (
            ["--scaimind-update-baseline"],
            "*--scaimind-update-baseline needs --scaimind-baseline=PATH*",
        ),
        (
            ["-o", "scaimind_reuse=sometimes"],
            "*ini scaimind_reuse must be one of auto, never, only*",
        ),
    ],
)
def test_bad_options_are_one_line_usage_errors(pytester, args, message):
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = pytester.runpytest("--scaimind-job=job_x", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


@pytest.mark.slow
def test_a_killed_session_is_resumed_not_resubmitted(gate_project, unique):
    import signal
    import subprocess
    import sys
    import time

    slow = gate_project.model(f"org/models/slow-{unique}", delay=0.05)
    gate_project.coordinator.register_job(gate_project.job_id, slow)
    gate_project.write_suite()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", *gate_project.args()],
        cwd=gate_project.pytester.path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    cached = gate_project.pytester.path / ".pytest_cache" / "v" / "scaimind" / "reuse" / "v2"
    try:
        deadline = time.monotonic() + 60
        while not (cached.is_dir() and any(cached.iterdir())) and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    [evaluation_id] = gate_project.evaluation_ids()
    time.sleep(1.0)
    # a 0.5 s reuse window hides the evaluation from the listing: only the cached id can resume it
    gate_project.run("--scaimind-reuse-window=0.00014").assert_outcomes(passed=5, failed=1)
    assert gate_project.evaluation_ids() == [evaluation_id]


def test_missing_host_or_key_is_a_usage_error(pytester, monkeypatch):
    monkeypatch.delenv("SCAIGRID_HOST", raising=False)
    monkeypatch.delenv("SCAIGRID_API_KEY", raising=False)
    pytester.makepyfile(
        test_g="from pytest_scaimind import assert_benchmark\n"
        "def test_g():\n    assert_benchmark('mmlu', min_score=0.5)\n"
    )
    result = pytester.runpytest("--scaimind-job=job_x", "--scaimind-model-uri=m")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*scaimind gates need a coordinator: no coordinator host*SCAIGRID_HOST*"]
    )
    result = pytester.runpytest("--scaimind-job=job_x", "--scaimind-host=http://127.0.0.1:9")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no API key*SCAIGRID_API_KEY*"])


def test_the_scaimind_fixture_gates_like_the_function_and_skips_at_the_test(gate_project):
    gate_project.pytester.makepyfile(
        test_fixture=f"""
from pytest_scaimind import assert_benchmark
from pytest_scaimind._state import SESSION

def test_with_fixture(scaimind, request):
    assert scaimind.active == (SESSION in request.config.stash)
    result = scaimind.assert_benchmark("custom-big", dataset="{gate_project.big}", min_score=0.9)
    assert result.score == 0.95

def test_with_function():
    assert_benchmark("custom-big", dataset="{gate_project.big}", min_score=0.9)
"""
    )
    result = gate_project.run()
    result.assert_outcomes(passed=2)
    assert gate_project.submissions() == 1  # the fixture's literal call joined the batch
    skipped = gate_project.pytester.runpytest("-rs")
    skipped.assert_outcomes(skipped=2)
    # the skip points at the test that gated, not at the plugin's own code
    skipped.stdout.fnmatch_lines(["SKIPPED [[]1[]] test_fixture.py:*: scaimind gate skipped*"])
    assert "pytest_scaimind" not in skipped.stdout.str()
