"""Waiting well in a CI log: progress lines, one session-wide timeout, timeouts that say what the
polls saw, and what an interrupt leaves running (with the commands to resume and cancel it)."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import types
from typing import TYPE_CHECKING, Any

import pytest

from pytest_scaimind._evaluations import Evaluations, NoResult, Waited
from pytest_scaimind._waiting import ProgressLines, left_running, timed_out
from scaimind_nb import APIConnectionError, Client, PollEvent, WaitTimeoutError, parse_evaluation

if TYPE_CHECKING:
    from conftest import GateProject


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _snapshot(eid: str, status: str = "RUNNING", done: int = 3) -> Any:
    return parse_evaluation(
        {
            "evaluation_id": eid,
            "status": status,
            "progress": [
                {"benchmark": "custom-big", "completed": str(done), "total": "20"},
                {"benchmark": "custom-qa", "completed": "0", "total": "4"},
            ],
        }
    )


def test_progress_lines_come_at_least_every_interval_and_say_what_the_polls_saw() -> None:
    clock, lines, times = Clock(), [], []

    def write(line: str) -> None:
        lines.append(line)
        times.append(clock.now)

    progress = ProgressLines(write, interval=30, poll_cap=15, clock=clock)
    start = clock.now
    for step in range(1, 40):  # a poll every 4 s (under the 15 s cap)
        clock.now = start + 4 * step
        failing = 8.0 if step >= 30 else None
        error = APIConnectionError("GET … failed: ConnectError") if failing else None
        progress(
            PollEvent(
                "eval_1", clock.now - start, _snapshot("eval_1", done=step % 20), error, failing
            )
        )
    gaps = [b - a for a, b in zip([start, *times], times, strict=False)]
    assert len(lines) >= 156 // 30 and all(15 <= gap <= 30 for gap in gaps)
    assert lines[0] == "scaimind: waiting 16s for eval_1: RUNNING, custom-big 4/20, custom-qa 0/4"
    assert re.fullmatch(
        r"scaimind: waiting \d+s for eval_1: coordinator unreachable for the last 8s "
        r"\(GET … failed: ConnectError\); last seen RUNNING, custom-big \d+/20, custom-qa 0/4",
        lines[-1],
    )


def test_timeout_messages_say_what_the_polls_saw() -> None:
    still = WaitTimeoutError("eval_1", _snapshot("eval_1"), 8.0)
    assert timed_out(still, 8) == (
        "evaluation eval_1 still RUNNING, custom-big 3/20, custom-qa 0/4 after "
        "--scaimind-timeout=8s (the whole session's wait); rerun to pick the same evaluation up "
        "(a rerun reuses it) or raise the timeout"
    )
    error = APIConnectionError("GET http://c/… failed: ConnectError")
    gone = WaitTimeoutError("eval_1", _snapshot("eval_1"), 60.0, last_error=error, failing_for=40.2)
    assert timed_out(gone, 60) == (
        "evaluation eval_1: coordinator unreachable for the last 40s (GET http://c/… failed: "
        "ConnectError) of --scaimind-timeout=60s (the whole session's wait); last seen RUNNING, "
        "custom-big 3/20, custom-qa 0/4; rerun to pick the same evaluation up"
    )


class _Client:
    """Stands in for scaimind_nb.Client: each wait uses up `takes` seconds of a fake clock."""

    host = "http://coordinator.test"

    def __init__(self, clock: Clock, takes: list[float]) -> None:
        self.clock, self.takes = clock, takes
        self.timeouts: list[float] = []
        self.poll_caps: list[float] = []
        self.gets: list[str] = []

    def wait(
        self, evaluation_id: str, *, timeout: float, max_poll_interval: float, **_: Any
    ) -> Any:
        self.timeouts.append(timeout)
        self.poll_caps.append(max_poll_interval)
        spent = min(self.takes.pop(0), timeout)
        self.clock.now += spent
        if spent < timeout:
            return _snapshot(evaluation_id, "COMPLETED", 20)
        raise WaitTimeoutError(evaluation_id, _snapshot(evaluation_id), spent)

    def get(self, evaluation_id: str) -> Any:
        self.gets.append(evaluation_id)
        return _snapshot(evaluation_id)


def test_one_timeout_bounds_the_whole_sessions_waiting() -> None:
    clock = Clock()
    client = _Client(clock, takes=[4.0, 100.0])
    config = types.SimpleNamespace(
        hook=types.SimpleNamespace(pytest_scaimind_evaluation_done=lambda **_: None)
    )
    options = types.SimpleNamespace(timeout=10.0, progress_interval=30.0, poll_interval=None)
    evaluations = Evaluations(config, options, client, "h", "h", "m", print)  # type: ignore[arg-type]
    evaluations.clock = clock
    waits = [Waited(e, _snapshot(e)) for e in ("eval_a", "eval_b", "eval_c")]
    assert evaluations._finish(waits[0]).status.value == "COMPLETED"
    with pytest.raises(NoResult, match=r"eval_b still RUNNING.*--scaimind-timeout=10s"):
        evaluations._finish(waits[1])
    with pytest.raises(NoResult, match=r"eval_c still RUNNING.*the whole session's wait"):
        evaluations._finish(waits[2])
    assert client.timeouts == [10.0, 6.0]  # the second wait gets what the first left
    assert client.gets == ["eval_c"]  # nothing left: one look, no waiting
    assert client.poll_caps == [15.0, 15.0]  # polls at most half the progress interval apart
    assert evaluations.waited == 10.0


def test_the_interrupt_note_lists_what_is_left_running_and_how_to_resume_or_cancel() -> None:
    evaluations = [_snapshot("eval_a"), _snapshot("eval_b", "COMPLETED", 20)]
    args = ["--scaimind-job=job 1", "-k", "qa"]
    lines = left_running(evaluations, "https://scaigrid.example", args, local=False)
    assert lines[:3] == [
        "scaimind: interrupted; 1 evaluation(s) left running on https://scaigrid.example:",
        "  eval_a  RUNNING, custom-big 3/20, custom-qa 0/4",
        "  resume: pytest '--scaimind-job=job 1' -k qa   (a rerun reuses them)",
    ]
    assert lines[3] == (
        "  cancel: python -c 'import scaimind_nb; c = scaimind_nb.Client("
        "'\"'\"'https://scaigrid.example'\"'\"'); [c.cancel(i) for i in ['\"'\"'eval_a'\"'\"'] "
        "if not c.get(i).is_terminal]'   (key from SCAIGRID_API_KEY)"
    )
    local = left_running(evaluations, "http://127.0.0.1:1", args, local=True)
    assert "the embedded coordinator stopped with this session" in local[-1]
    assert left_running(evaluations[1:], "h", args, local=False) == []


def _slow_suite(project: GateProject, unique: str, delay: float) -> None:
    slow = project.model(f"org/models/slow-{unique}", delay=delay)
    project.coordinator.register_job(project.job_id, slow)
    project.pytester.makepyfile(
        test_slow=f'''
from pytest_scaimind import assert_benchmark

def test_big():
    assert_benchmark("custom-big", dataset="{project.big}", min_score=0.9)

def test_big_ten():
    assert_benchmark("custom-big", dataset="{project.big}", num_samples=10, min_score=0.9)

def test_qa():
    assert_benchmark("custom-qa", dataset="{project.qa}", min_score=0.7)
'''
    )


def test_progress_lines_reach_the_terminal_while_waiting(
    gate_project: GateProject, unique: str
) -> None:
    _slow_suite(gate_project, unique, delay=0.05)
    result = gate_project.run("--scaimind-progress-interval=0.2")
    result.assert_outcomes(passed=3)
    first = gate_project.evaluation_ids()[0]
    result.stdout.fnmatch_lines(
        [f"scaimind: waiting *s for {first}: RUNNING, custom-big */20, custom-qa */4"]
    )
    assert "Captured" not in result.stdout.str()


def test_one_timeout_for_the_session_and_both_evaluations_say_so(
    gate_project: GateProject, unique: str
) -> None:
    _slow_suite(gate_project, unique, delay=0.2)
    result = gate_project.run("--scaimind-timeout=0.5")
    result.assert_outcomes(errors=3)
    first, second = gate_project.evaluation_ids()
    for evaluation_id in (first, second):
        result.stdout.fnmatch_lines(
            [
                f"scaimind: evaluation {evaluation_id} still * after --scaimind-timeout=0.5s "
                "(the whole session's wait); rerun to pick the same evaluation up*"
            ]
        )


def test_a_timeout_while_the_coordinator_is_gone_says_so(
    gate_project: GateProject, front: Any, unique: str
) -> None:
    gone = front(stop_after=("POST", "/evaluations"))
    _slow_suite(gate_project, unique, delay=0.05)
    result = gate_project.run(
        f"--scaimind-host={gone.url}", "--scaimind-timeout=2", "--scaimind-progress-interval=0.4"
    )
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(
        [
            "scaimind: waiting *s for eval_*: coordinator unreachable for the last *s*",
            "*scaimind: evaluation eval_*: coordinator unreachable for the last *s (GET "
            f"{gone.url}/v1/modules/scaimind/evaluations/eval_* failed: ConnectError*) of "
            "--scaimind-timeout=2s (the whole session's wait); last seen *",
        ]
    )


@pytest.mark.slow
def test_after_sigint_the_evaluations_left_running_are_printed_with_resume_and_cancel(
    gate_project: GateProject, unique: str
) -> None:
    _slow_suite(gate_project, unique, delay=0.2)
    args = [*gate_project.args(), "--scaimind-progress-interval=0.2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", *args],
        cwd=gate_project.pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"},  # flushed by us
        # A suite started in the background by a shell without job control inherits SIGINT
        # ignored, and Python then installs no KeyboardInterrupt handler: give Ctrl-C back.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout is not None
    seen = []
    try:
        for line in proc.stdout:  # the progress line shows that the session is waiting
            seen.append(line)
            if line.startswith("scaimind: waiting"):
                proc.send_signal(signal.SIGINT)
                break
        seen += proc.stdout.readlines()
    finally:
        proc.wait(60)
    out = "".join(seen)
    evaluations = gate_project.evaluation_ids()
    assert len(evaluations) == 2, out
    assert (
        f"scaimind: interrupted; 2 evaluation(s) left running on {gate_project.coordinator.url}:"
        in out
    )
    for evaluation_id in evaluations:
        assert f"  {evaluation_id}  " in out
    assert f"  resume: pytest {shlex.join(args)}   (a rerun reuses them)" in out
    cancel = next(line for line in seen if line.startswith("  cancel: "))
    command = cancel.removeprefix("  cancel: ").split("   (key from")[0]
    done = subprocess.run(
        shlex.split(command), env=os.environ, timeout=60, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    coordinator = gate_project.coordinator
    with Client(
        coordinator.url, coordinator.api_key
    ) as client:  # a running one stops at its next sample
        ends = {client.wait(e, timeout=60, poll_interval=0.05).status.value for e in evaluations}
    assert "CANCELLED" in ends and ends <= {"CANCELLED", "COMPLETED"}, out
