"""The kernel layer of the sandbox on its own: the Python guard is off, the program may use ctypes.

Each program here acts as determined code would and reports what it could reach; the tests then
assert, from inside and from the host, that the namespaces, the uid, the capabilities, the
seccomp filter and the file-system view hold without any help from Python.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from scaimind_local._sandbox import SANDBOX_UID, Isolation, Program, ProgramResult, Sandbox, probe

from ._helpers import descendants, run_all, server_pids

pytestmark = pytest.mark.isolation


@pytest.fixture(scope="module")
def isolation() -> Isolation:
    found = probe()
    assert found.isolated, found.detail
    return found


@pytest.fixture(scope="module")
def sandbox(isolation: Isolation) -> Iterator[Sandbox]:
    with Sandbox(1, isolation=isolation, timeout=5.0, guard=False) as sb:
        yield sb


def report(sandbox: Sandbox, code: str, *, timeout: float | None = None) -> dict:
    """Run `code`, which leaves its findings in a dict `found`; return that dict."""
    verdict = sandbox.run(
        Program((code + "\nimport json\nprint('FOUND' + json.dumps(found))\n",)), timeout=timeout
    )
    assert verdict.passed, verdict
    return json.loads(verdict.output.rpartition("FOUND")[2])


LIBC = """
import ctypes, ctypes.util, errno, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def syscall(*args):
    result = libc.syscall(*[ctypes.c_long(a) for a in args])
    return 0 if result >= 0 else errno.errorcode[ctypes.get_errno()]
"""


def test_a_program_sees_only_its_own_pid_namespace(sandbox: Sandbox) -> None:
    found = report(
        sandbox,
        "import os\n"
        "found = {'pid': os.getpid(), 'ppid': os.getppid(),\n"
        "         'proc': sorted(int(p) for p in os.listdir('/proc') if p.isdigit()),\n"
        "         'signalable': []}\n"
        "for pid in range(1, 4096):\n"
        "    if pid != os.getpid():\n"
        "        try:\n"
        "            os.kill(pid, 0)\n"
        "            found['signalable'].append(pid)\n"
        "        except OSError:\n"
        "            pass\n"
        "        try:\n"
        "            os.close(os.pidfd_open(pid))\n"
        "            found['signalable'].append(pid)\n"
        "        except OSError:\n"
        "            pass\n",
    )
    # pid 1 is the program's own init (it holds no descriptor and ignores signals without a
    # handler); the fork server, its keeper and every other program are in no namespace it sees
    assert found["ppid"] == 1 and found["proc"] == [1, found["pid"]]
    assert set(found["signalable"]) <= {1}


def test_a_program_has_no_privileges_and_a_seccomp_filter(sandbox: Sandbox) -> None:
    found = report(
        sandbox,
        "found = dict(line.split(':\\t') for line in open('/proc/self/status').read().splitlines()"
        " if ':\\t' in line)",
    )
    assert found["CapEff"] == found["CapPrm"] == found["CapBnd"] == "0000000000000000"
    assert found["NoNewPrivs"] == "1" and found["Seccomp"] == "2"
    assert found["Uid"].split() == [str(SANDBOX_UID)] * 4


def test_the_seccomp_filter_refuses_escapes_and_allows_threads_and_fork(sandbox: Sandbox) -> None:
    found = report(
        sandbox,
        LIBC + "import threading\n"
        "found = {\n"
        "  'unshare': syscall(272, 0x10000000), 'setns': syscall(308, 0, 0),\n"
        "  'mount': syscall(165, 0, 0, 0, 0, 0), 'umount2': syscall(166, 0, 0),\n"
        "  'ptrace': syscall(101, 16, 1, 0, 0), 'process_vm_readv': syscall(310, 1, 0, 0, 0, 0, 0),\n"
        "  'keyctl': syscall(250, 0, 0, 0, 0, 0), 'bpf': syscall(321, 0, 0, 0),\n"
        "  'io_uring_setup': syscall(425, 1, 0), 'userfaultfd': syscall(323, 0),\n"
        "  'clone_newuser': syscall(56, 0x10000000 | 17, 0, 0, 0, 0), 'clone3': syscall(435, 0, 0),\n"
        "}\n"
        "t = threading.Thread(target=lambda: None); t.start(); t.join()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    os._exit(7)\n"
        "found['fork'] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])\n",
    )
    assert found.pop("clone3") == "ENOSYS" and found.pop("fork") == 7
    assert set(found.values()) == {"EPERM"}, found


def test_nothing_of_the_host_is_visible_or_writable(sandbox: Sandbox, tmp_path: Path) -> None:
    canary = tmp_path / "canary.txt"
    canary.write_text("canary")
    found = report(
        sandbox,
        "import os\n"
        "found = {'root': sorted(os.listdir('/')), 'etc': sorted(os.listdir('/etc')),\n"
        f"        'canary': os.path.exists({str(canary)!r}), 'cwd': os.getcwd(),\n"
        f"        'coordinator_cwd': os.path.exists({os.getcwd()!r}), 'writable': []}}\n"
        "for top in found['root']:\n"
        "    for here, dirs, files in os.walk('/' + top):\n"
        "        if here.startswith(('/proc', '/tmp', '/dev')):\n"
        "            dirs.clear()\n"
        "            continue\n"
        "        try:\n"
        "            os.close(os.open(os.path.join(here, '.x'), os.O_CREAT | os.O_WRONLY))\n"
        "            found['writable'].append(here)\n"
        "        except OSError:\n"
        "            pass\n"
        "        dirs[:] = dirs[:3]\n",
        timeout=20,
    )
    assert set(found["root"]) <= {"dev", "etc", "lib", "lib32", "lib64", "proc", "root", "sandbox",
                                  "tmp", "usr", "home", "opt"}  # fmt: skip
    assert found["etc"] == ["ld.so.cache"]
    assert not found["canary"] and not found["coordinator_cwd"] and found["cwd"] == "/tmp"
    assert found["writable"] == []


def test_a_program_has_no_network(sandbox: Sandbox) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        found = report(
            sandbox,
            "import socket\n"
            "found = {'interfaces': [name for _, name in socket.if_nameindex()]}\n"
            "try:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
            "    found['connected'] = True\n"
            "except OSError as exc:\n"
            "    found['connected'] = type(exc).__name__\n",
        )
    assert found["interfaces"] == ["lo"] and found["connected"] != True  # noqa: E712


def test_nothing_a_program_leaves_survives_it(sandbox: Sandbox) -> None:
    before = descendants(server_pids(sandbox))
    leave = report(
        sandbox,
        "import os, time\n"
        "from multiprocessing import shared_memory\n"
        "open('/tmp/left.txt', 'w').write('x')\n"
        "open('/dev/shm/left', 'w').write('x')\n"
        "shm = shared_memory.SharedMemory(name='left-behind', create=True, size=4096)\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    time.sleep(600)\n"
        "found = {'pid': os.getpid()}\n",
    )
    assert leave["pid"] > 1
    assert descendants(server_pids(sandbox)) == before  # the daemon died with the namespace
    found = report(
        sandbox,
        "import os\n"
        "found = {'tmp': os.listdir('/tmp'), 'shm': os.listdir('/dev/shm'),\n"
        "         'proc': sorted(int(p) for p in os.listdir('/proc') if p.isdigit())}\n",
    )
    assert found["tmp"] == [] and found["shm"] == [] and len(found["proc"]) == 2


def test_the_fork_server_is_out_of_reach(sandbox: Sandbox) -> None:
    """Nothing of the fork server is in the program's namespace; its init (pid 1) holds only the
    status pipe, which the program can name but, lacking the init's capabilities, not open."""
    found = report(
        sandbox,
        "import errno, os\n"
        "found = {'init fds': sorted(int(fd) for fd in os.listdir('/proc/1/fd')), 'opened': {}}\n"
        "paths = ['/proc/1/mem', '/proc/1/environ'] + [f'/proc/1/fd/{fd}' for fd in found['init fds']]\n"
        "for path in paths:\n"
        "    for flags in (os.O_RDONLY, os.O_WRONLY):\n"
        "        try:\n"
        "            os.close(os.open(path, flags))\n"
        "            found['opened'][path] = 'opened'\n"
        "        except OSError as exc:\n"
        "            found['opened'].setdefault(path, errno.errorcode[exc.errno])\n"
        "found['own fds'] = sorted(int(fd) for fd in os.listdir('/proc/self/fd'))\n",
    )
    assert len(found["init fds"]) == 1  # the status pipe alone
    assert set(found["opened"].values()) == {"EACCES"}, found["opened"]
    assert found["own fds"] == [0, 1, 2, 3, 4]  # stdin, output twice, result pipe, listdir's


def test_programs_run_as_an_unprivileged_host_user(sandbox: Sandbox) -> None:
    """From the host: every process of the sandbox, the running program included, has uid
    SANDBOX_UID (when the coordinator is root) or the coordinator's own uid."""
    expected = SANDBOX_UID if os.geteuid() == 0 else os.geteuid()
    resident = descendants(server_pids(sandbox)) | server_pids(sandbox)
    seen: dict[int, list[str]] = {}
    verdict: list[ProgramResult] = []
    runner = threading.Thread(
        target=lambda: verdict.append(
            sandbox.run(Program(("import time\ntime.sleep(30)",)), timeout=3)
        )
    )
    runner.start()
    while runner.is_alive() and len(seen) < len(resident) + 3:  # + keeper, init, program
        for pid in descendants(server_pids(sandbox)) | server_pids(sandbox):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            seen[pid] = next(
                line.split()[1:] for line in status.splitlines() if line.startswith("Uid:")
            )
    runner.join()
    assert len(seen) >= len(resident) + 3, seen
    assert all(uids == [str(expected)] * 4 for uids in seen.values()), seen
    assert verdict[0].outcome == "timed_out"


def test_other_system_call_abis_are_refused(sandbox: Sandbox) -> None:
    """x32 numbers are refused; an i386 `int 0x80` call (another numbering) kills the program."""
    x32 = report(sandbox, LIBC + "found = {'x32 getpid': syscall(0x40000000 | 39)}")
    assert x32 == {"x32 getpid": "EPERM"}
    verdict = sandbox.run(
        Program(
            (
                "import ctypes, mmap\n"
                "code = b'\\xb8\\x14\\x00\\x00\\x00\\xcd\\x80\\xc3'  # mov eax, 20; int 0x80; ret\n"
                "page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)\n"
                "page.write(code)\n"
                "address = ctypes.addressof(ctypes.c_char.from_buffer(page))\n"
                "ctypes.CFUNCTYPE(ctypes.c_int)(address)()\n",
            )
        )
    )
    assert verdict.outcome == "failed" and verdict.error == "killed by SIGSYS", verdict


def test_a_fork_bomb_stops_at_the_task_limit_and_leaves_nothing(sandbox: Sandbox) -> None:
    resident = descendants(server_pids(sandbox))
    found = report(
        sandbox,
        "import errno, os, time\n"
        "found = {'forks': 0}\n"
        "try:\n"
        "    while True:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(600)\n"
        "            os._exit(0)\n"
        "        found['forks'] += 1\n"
        "except OSError as exc:\n"
        "    found['error'] = errno.errorcode[exc.errno]\n",
    )
    assert found["error"] == "EAGAIN" and found["forks"] < 32  # keeper, init and program count
    assert descendants(server_pids(sandbox)) == resident


def test_the_rest_of_the_view(sandbox: Sandbox) -> None:
    """/dev is read-only, the hostname is the sandbox's, and the kernel kills sandboxed code
    before the coordinator under memory pressure."""
    found = report(
        sandbox,
        "import os, socket\n"
        "found = {'hostname': socket.gethostname(),\n"
        "         'oom_score_adj': open('/proc/self/oom_score_adj').read().strip()}\n"
        "try:\n"
        "    open('/dev/created', 'w')\n"
        "    found['dev'] = 'writable'\n"
        "except OSError as exc:\n"
        "    found['dev'] = exc.strerror\n",
    )
    assert found == {"hostname": "sandbox", "oom_score_adj": "1000", "dev": "Read-only file system"}


def test_programs_running_side_by_side_cannot_see_each_other(isolation: Isolation) -> None:
    scan = (
        "import os, time\n"
        "found = {'start': time.time(), 'others': set()}\n"
        "while time.time() < found['start'] + 2.0:\n"
        "    for pid in range(2, 2048):\n"
        "        if pid != os.getpid():\n"
        "            try:\n"
        "                os.kill(pid, 0)\n"
        "                found['others'].add(pid)\n"
        "            except OSError:\n"
        "                pass\n"
        "found.update(others=sorted(found['others']), end=time.time())\n"
    )
    with Sandbox(2, isolation=isolation, timeout=10, guard=False) as pair:
        assert all(v.passed for v in run_all(pair, [Program(("pass",))] * 2))  # both servers up
        verdicts = run_all(
            pair, [Program((scan + "import json\nprint('FOUND' + json.dumps(found))\n",))] * 2
        )
    first, second = (json.loads(v.output.rpartition("FOUND")[2]) for v in verdicts)
    assert max(first["start"], second["start"]) < min(first["end"], second["end"])  # overlapped
    assert first["others"] == second["others"] == []
