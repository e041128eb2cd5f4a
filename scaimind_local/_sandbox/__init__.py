"""Run untrusted programs (model-written code) where the kernel, not Python, contains them.

`Sandbox(workers, isolation=...)` keeps one fork server per worker (`_server.py`, a clean
`python -I -S`). With kernel isolation (what `probe()` finds, normally) each server runs inside
bubblewrap: its own user, pid, network, mount, ipc and uts namespaces, an unprivileged uid
(65534 when the coordinator is root), no network, a read-only view of the interpreter and its
standard library only, no capabilities and no_new_privs; each program then gets user, pid,
mount and ipc namespaces of its own below that, a fresh tmpfs work dir, a seccomp filter and
the rlimits. Without isolation (`UNISOLATED`, only when the operator allows it) the same
server runs programs with the rlimits and the Python guard alone. docs/sandbox.md has the whole
design, what it stops and what it does not.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import json
import os
import queue
import select
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
_SERVER = _HERE / "_server.py"
_LAUNCH = _HERE / "_launch.py"
_ENV = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}
SANDBOX_UID = 65534
"""The host uid (and gid) sandboxed code runs as when the coordinator is root: `nobody`."""
INSIDE = "/sandbox"
"""Where the sandbox sees this package's folder (the fork server and its kernel helpers)."""
STARTUP_TIMEOUT = 30.0
"""Seconds a fork server may take to announce itself."""
ANSWER_MARGIN = 30.0
"""Seconds past a program's timeout before a silent fork server is given up as broken."""
DOCS = "docs/sandbox.md"


class SandboxUnavailable(RuntimeError):
    """A fork server could not be started (the message says why, never a secret)."""


class IsolationUnavailable(RuntimeError):
    """Kernel isolation is missing and the operator did not allow code to run without it."""


@dataclass(frozen=True)
class Isolation:
    """How programs are contained: `bwrap` set = kernel namespaces; None = the Python guard only.

    `detail` says, in one line, what is in force, or why kernel isolation is not available.
    """

    bwrap: str | None
    detail: str

    @property
    def isolated(self) -> bool:
        """True when programs run in kernel namespaces."""
        return self.bwrap is not None


UNISOLATED = Isolation(None, "none: programs run with rlimits and the Python guard only")


@dataclass(frozen=True)
class Program:
    """Sources run in order in one namespace, then `call` = (function, argument name) if set."""

    sources: tuple[str, ...]
    call: tuple[str, str] | None = None


class ProgramOutcome(enum.StrEnum):
    """How one program ended."""

    PASSED = "passed"
    FAILED = "failed"
    TIMED_OUT = "timed_out"


@dataclass(frozen=True)
class ProgramResult:
    """What one program did: its outcome, the error's last line, its output and its time."""

    outcome: ProgramOutcome
    error: str | None
    output: str
    seconds: float

    @property
    def passed(self) -> bool:
        """True only when the program ran to its end and the harness confirmed it."""
        return self.outcome is ProgramOutcome.PASSED


# --- what the sandbox sees --------------------------------------------------------------------


def _exposed() -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    """(read-only binds as (host path, sandbox path), symlinks as (target, path), hidden dirs).

    Only what the interpreter needs: its executable, libpython, the standard library (its
    site-packages hidden under an empty read-only tmpfs), the system's shared libraries, the
    loader cache and this package's folder at INSIDE.
    """
    binds: dict[str, str] = {}  # sandbox path -> host path

    def bind(path: str, inside: str | None = None) -> None:
        binds.setdefault(inside or path, os.path.realpath(path))

    bind(os.path.realpath(sys.executable))
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):
        libpython = os.path.join(
            str(sysconfig.get_config_var("LIBDIR")), str(sysconfig.get_config_var("INSTSONAME"))
        )
        if os.path.exists(libpython):
            bind(libpython)
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib"):
        bind(paths[key])
    links = []
    for system in ("/usr/lib", "/usr/lib64", "/usr/lib32", "/lib", "/lib64", "/lib32"):
        if os.path.islink(system):
            links.append((os.readlink(system), system))
        elif os.path.isdir(system):
            bind(system)
    if os.path.isfile("/etc/ld.so.cache"):
        bind("/etc/ld.so.cache")
    bind(str(_HERE), INSIDE)
    hidden = sorted(
        {
            paths[key]
            for key in ("purelib", "platlib")
            if os.path.isdir(paths[key])
            and any(paths[key].startswith(inside + os.sep) for inside in binds)
        }
    )
    return [(host, inside) for inside, host in binds.items()], links, hidden


def _bwrap_args(
    bwrap: str, binds: list[tuple[str, str]], links: list[tuple[str, str]], hidden: list[str]
) -> list[str]:
    """The bubblewrap command running an isolated fork server (see `_exposed` for the views)."""
    args = [
        bwrap,
        "--unshare-user",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_UID),
        "--hostname",
        "sandbox",
        # no --die-with-parent: its PDEATHSIG fires when the *thread* that started bwrap ends;
        # the fork server leaves instead when its stdin closes, as the coordinator's death does
        "--new-session",
        "--clearenv",
    ]
    for name, value in _ENV.items():
        args += ["--setenv", name, value]
    for host, inside in binds:
        args += ["--ro-bind", host, inside]
    for target, path in links:
        args += ["--symlink", target, path]
    for path in hidden:
        args += ["--tmpfs", path, "--remount-ro", path]
    args += ["--proc", "/proc", "--dev", "/dev", "--dir", "/tmp", "--remount-ro", "/dev"]
    args += ["--remount-ro", "/", "--chdir", "/"]
    python = os.path.realpath(sys.executable)
    return [*args, "--", python, "-I", "-S", f"{INSIDE}/_server.py", "--isolated"]


def _command(isolation: Isolation) -> list[str]:
    """The argv that starts one fork server under `isolation`."""
    python = os.path.realpath(sys.executable)
    if isolation.bwrap is None:
        return [python, "-I", "-S", str(_SERVER)]
    binds, links, hidden = _exposed()
    if os.geteuid() != 0:
        return _bwrap_args(isolation.bwrap, binds, links, hidden)
    # root: bwrap would map the sandbox onto root; the launcher stages the sources and drops
    # to SANDBOX_UID first, so bwrap runs unprivileged and maps the sandbox onto nobody
    stage = "/tmp"
    staged = [(f"{stage}/{i}", inside) for i, (_, inside) in enumerate(binds)]
    spec = {
        "sources": [host for host, _ in binds],
        "stage": stage,
        "uid": SANDBOX_UID,
        "gid": SANDBOX_UID,
        "argv": _bwrap_args(isolation.bwrap, staged, links, hidden),
    }
    return [python, "-I", "-S", str(_LAUNCH), json.dumps(spec)]


# --- fork servers -----------------------------------------------------------------------------


class _Server:
    """One fork server process; used by one thread at a time."""

    def __init__(self, isolation: Isolation) -> None:
        self.proc = subprocess.Popen(
            _command(isolation),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_ENV,
            cwd="/",
            start_new_session=True,
            bufsize=0,
        )
        self._pending = b""
        self._next_id = 0
        line = self._line(time.monotonic() + STARTUP_TIMEOUT)
        try:
            self.ready: dict[str, Any] = json.loads(line)["ready"] if line else {}
        except (ValueError, KeyError, TypeError):
            self.ready = {}
        if not self.ready or self.ready.get("isolated") != isolation.isolated:
            reason = self._failure()
            self.close()
            raise SandboxUnavailable(reason)

    def _failure(self) -> str:
        """Why the server did not come up: the first line it (or bwrap) wrote on stderr."""
        assert self.proc.stderr is not None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        if self.proc.poll() is None:
            return "the sandbox did not announce itself"
        text = self.proc.stderr.read(4096).decode("utf-8", "replace").strip()
        first = text.splitlines()[-1] if text else ""
        return first or f"the sandbox exited with status {self.proc.returncode}"

    def _line(self, deadline: float) -> bytes | None:
        """The next line from the server, or None at EOF or once `deadline` has passed."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        return line

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one request; the answer must carry its id (anything else breaks the server)."""
        assert self.proc.stdin is not None
        self._next_id += 1
        self.proc.stdin.write(json.dumps({**request, "id": self._next_id}).encode() + b"\n")
        line = self._line(time.monotonic() + float(request["timeout"]) + ANSWER_MARGIN)
        if line is None:
            raise RuntimeError(f"sandbox server stopped answering (status {self.proc.poll()})")
        answer: dict[str, Any] = json.loads(line)
        if answer.get("id") != self._next_id:
            raise RuntimeError("sandbox server answered out of turn")
        return answer

    def close(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Sandbox:
    """A pool of fork servers running programs in parallel; use as a context manager.

    `isolation` comes from `choose()` or `probe()` (or is `UNISOLATED`); `guard=False` leaves
    out the Python-level guard, to test that the kernel layer holds on its own.
    """

    def __init__(
        self,
        workers: int = 2,
        *,
        isolation: Isolation,
        timeout: float = 3.0,
        memory_mb: int = 1024,
        guard: bool = True,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self.isolation = isolation
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.guard = guard
        self._idle: queue.SimpleQueue[_Server] = queue.SimpleQueue()
        self._servers: list[_Server] = []
        self._lock = threading.Lock()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the fork servers."""
        with self._lock:
            servers, self._servers = self._servers, []
        for server in servers:
            server.close()

    def _acquire(self) -> _Server:
        while True:
            try:
                server = self._idle.get_nowait()
            except queue.Empty:
                server = _Server(self.isolation)
                with self._lock:
                    self._servers.append(server)
                return server
            if server.proc.poll() is None:
                return server
            self._discard(server)

    def _discard(self, server: _Server) -> None:
        server.close()
        with self._lock:
            if server in self._servers:
                self._servers.remove(server)

    def run(self, program: Program, *, timeout: float | None = None) -> ProgramResult:
        """Run one program in a fresh child process and return its verdict."""
        timeout = self.timeout if timeout is None else timeout
        request = {
            "sources": list(program.sources),
            "call": list(program.call) if program.call else None,
            "timeout": timeout,
            "cpu_seconds": int(timeout) + 2,
            "memory_bytes": self.memory_mb << 20,
            "guard": self.guard,
        }
        try:
            server = self._acquire()
        except (OSError, SandboxUnavailable) as exc:
            return ProgramResult(ProgramOutcome.FAILED, f"sandbox error: {exc}", "", 0.0)
        try:
            answer = server.run(request)
        except (OSError, RuntimeError, ValueError) as exc:
            self._discard(server)
            return ProgramResult(ProgramOutcome.FAILED, f"sandbox error: {exc}", "", 0.0)
        self._idle.put(server)
        return ProgramResult(
            ProgramOutcome(answer["verdict"]), answer["error"], answer["output"], answer["seconds"]
        )


# --- finding out what isolation this machine offers -------------------------------------------


def find_bwrap(configured: str | None = None) -> str | None:
    """The bubblewrap to use: the `sandbox_bwrap` setting, else $SCAIMIND_BWRAP, else PATH's."""
    return configured or os.environ.get("SCAIMIND_BWRAP") or shutil.which("bwrap")


def probe(bwrap: str | None = None) -> Isolation:
    """What isolation this machine offers (found once per process and bubblewrap path)."""
    return _probe(find_bwrap(bwrap))


@functools.lru_cache(maxsize=8)
def _probe(bwrap: str | None) -> Isolation:
    if not sys.platform.startswith("linux"):
        return Isolation(None, f"kernel isolation needs Linux namespaces; this is {sys.platform}")
    if not bwrap or not os.access(bwrap, os.X_OK):
        return Isolation(
            None,
            f"bubblewrap is not installed ({bwrap or 'bwrap'} is not an executable); on "
            "Debian or Ubuntu: apt-get install bubblewrap",
        )
    try:
        version = subprocess.run(
            [bwrap, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Isolation(None, f"{bwrap} does not run: {exc}")
    trial = Isolation(bwrap, "")
    how = (
        "unprivileged user namespaces must be allowed (sysctl user.max_user_namespaces > 0, "
        "kernel.unprivileged_userns_clone=1, no AppArmor restriction on them) and a root "
        "coordinator needs CAP_SYS_ADMIN"
    )
    try:
        server = _Server(trial)
    except (OSError, SandboxUnavailable) as exc:
        return Isolation(None, f"{version or bwrap} cannot build the sandbox ({exc}); {how}")
    try:
        answer = server.run({"sources": ["pass"], "call": None, "timeout": 10,
                             "cpu_seconds": 12, "memory_bytes": 256 << 20, "guard": True})  # fmt: skip
    except (OSError, RuntimeError, ValueError) as exc:
        answer = {"verdict": "failed", "error": str(exc)}
    finally:
        server.close()
    if answer["verdict"] != "passed":
        return Isolation(
            None, f"{version or bwrap} cannot isolate a program ({answer['error']}); {how}"
        )
    uid = SANDBOX_UID if os.geteuid() == 0 else os.geteuid()
    seccomp = "seccomp filter" if server.ready.get("seccomp") else "no seccomp filter (x86_64 only)"
    return Isolation(
        bwrap,
        f"kernel namespaces ({version} at {bwrap}): user, pid, network, mount, ipc and uts "
        f"namespaces, host uid {uid}, a read-only interpreter and a private tmpfs per program, "
        f"no capabilities, no_new_privs, {seccomp}",
    )


def choose(settings: Mapping[str, Any]) -> Isolation:
    """The isolation to run model-written code with, under the coordinator's settings.

    Kernel isolation when the machine has it; otherwise `UNISOLATED` only if the operator set
    `allow_unisolated_code`, else IsolationUnavailable saying why and how to allow it.
    """
    found = probe(settings.get("sandbox_bwrap"))
    if found.isolated:
        return found
    if settings.get("allow_unisolated_code"):
        return Isolation(
            None,
            "none: the operator allowed model-written code to run without kernel isolation "
            f"(--allow-unisolated-code), with rlimits and the Python guard only; {found.detail}",
        )
    raise IsolationUnavailable(
        f"kernel isolation is not available here ({found.detail}). Fix that (see {DOCS}), or "
        "start the coordinator with --allow-unisolated-code (LocalCoordinator("
        "allow_unisolated_code=True)) to run model-written code with only the Python guard"
    )


def describe(settings: Mapping[str, Any]) -> str:
    """One line for `scaimind-local serve`: the isolation model-written code gets here."""
    try:
        return f"isolation: {choose(settings).detail}"
    except IsolationUnavailable as exc:
        return f"isolation: unavailable, so humaneval submits are refused: {exc}"


__all__ = [
    "UNISOLATED",
    "Isolation",
    "IsolationUnavailable",
    "Program",
    "ProgramOutcome",
    "ProgramResult",
    "Sandbox",
    "SandboxUnavailable",
    "choose",
    "describe",
    "find_bwrap",
    "probe",
]
