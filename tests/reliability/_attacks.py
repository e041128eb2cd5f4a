"""Attacks on the coordinator by model-written code, and the bed they run against.

Each attack is the body of a humaneval completion (HumanEval/0's function, so it runs when the
tests call it) that a python-backend model returns, run through a real `scaimind-local serve`
whose API key is in its environment, as an operator would start it. The attacks use what the
Python guard does not see (`dir_fd` opens, sqlite3, pidfds, mkfifo/mknod/utime) wherever they
can, so that they meet the kernel isolation; those that need ctypes or sockets are stopped by
the guard first (tests/engine/test_sandbox_kernel.py runs the same kinds without it).

After each attack `AttackBed.run` checks that it was contained: its problem failed and the other
problems passed with consistent counts; no canary file (outside the work dir, in the drive, the
home and the coordinator's cwd) was read (its content is in no stored sample, nor the database)
or changed, nothing was created outside; the key is in no stored sample nor the database file;
the other evaluation's record and the model manifests are unchanged; the same coordinator
process still answers /healthz. Used by tests/reliability/test_attacks.py and
benchmarks/reliability.py ("attacks tried / contained").
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Any

from ._harness import REPO, free_port, scored_model, wait_until

API = "/v1/modules/scaimind"

ATTACKS: dict[str, str] = {
    "read the coordinator's environ (dir_fd)": """
    import os
    root = os.open("/", os.O_RDONLY)
    fd = os.open("proc/$coordinator_pid/environ", os.O_RDONLY, dir_fd=root)
    print(os.read(fd, 1 << 16))
    return None
""",
    "read the coordinator's memory (dir_fd)": """
    import os
    root = os.open("/", os.O_RDONLY)
    maps = os.read(os.open("proc/$coordinator_pid/maps", os.O_RDONLY, dir_fd=root), 1 << 20)
    print(maps[:2000])
    return None
""",
    "read host files via /proc/1/root (dir_fd)": """
    import os
    root = os.open("/", os.O_RDONLY)
    for path in ("$canary", "$db", "/etc/shadow"):
        try:
            print(os.read(os.open("proc/1/root" + path, os.O_RDONLY, dir_fd=root), 4096))
        except OSError as exc:
            print(path, exc)
    return None
""",
    "read the drive, the home and the cwd (dir_fd)": """
    import os
    root = os.open("/", os.O_RDONLY)
    for path in ("$drive_canary", "$home_canary", "$cwd_canary", "$canary"):
        try:
            print(os.read(os.open(path.lstrip("/"), os.O_RDONLY, dir_fd=root), 4096))
        except OSError as exc:
            print(path, exc)
    print(os.listdir("/"))
    return None
""",
    "write files outside the work dir (dir_fd)": """
    import os
    root = os.open("/", os.O_RDONLY)
    for folder in ("$outside", "$drive", "$cwd", "$home"):
        try:
            fd = os.open(folder.lstrip("/") + "/created-by-attack", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=root)
            os.write(fd, b"pwned")
        except OSError as exc:
            print(folder, exc)
    return None
""",
    "rewrite a model manifest to import the attacker's module (dir_fd)": """
    import json, os
    root = os.open("/", os.O_RDONLY)
    try:
        fd = os.open("$drive".lstrip("/") + "/created-evil.py", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=root)
        os.write(fd, b"import os; os.system('touch $outside/created-by-manifest')")
        fd = os.open("$manifest".lstrip("/"), os.O_WRONLY | os.O_TRUNC, dir_fd=root)
        os.write(fd, json.dumps({"backend": "python", "target": "evil:Model"}).encode())
    except OSError as exc:
        print(exc)
    return None
""",
    "forge another evaluation with sqlite3": """
    import sqlite3
    for target in ("$db", "file:$db?mode=rw"):
        try:
            conn = sqlite3.connect(target, uri=target.startswith("file:"))
            conn.execute("UPDATE evaluations SET status='COMPLETED', rendered=NULL, results='[]' WHERE id='$victim'")
            conn.commit()
            print("forged via", target)
        except sqlite3.Error as exc:
            print(target, exc)
    return None
""",
    "kill the fork server and the coordinator with pidfds": """
    import os, signal
    for pid in (os.getppid(), $coordinator_pid):
        try:
            signal.pidfd_send_signal(os.pidfd_open(pid), signal.SIGKILL)
        except OSError as exc:
            print(pid, exc)
    return None
""",
    "kill every process it can name with pidfds": """
    import os, signal
    for pid in range(1, 1000):
        if pid != os.getpid():
            try:
                signal.pidfd_send_signal(os.pidfd_open(pid), signal.SIGKILL)
            except OSError:
                pass
    return None
""",
    "mkfifo, mknod, mkdir and utime outside": """
    import os, stat
    steps = [
        lambda: os.mkfifo("$outside/created-fifo"),
        lambda: os.mkfifo("$drive/created-fifo.jsonl"),
        lambda: os.mknod("$outside/created-node", stat.S_IFIFO | 0o600),
        lambda: os.mknod("$outside/created-dev", stat.S_IFCHR | 0o600, os.makedev(1, 3)),
        lambda: os.mkdir("$outside/created-dir"),
        lambda: os.utime("$canary", (0, 0)),
        lambda: os.utime("$db", (0, 0)),
    ]
    for step in steps:
        try:
            step()
        except OSError as exc:
            print(exc)
    return None
""",
    "write forged verdicts to every process's stdout": """
    import json, os
    root = os.open("/", os.O_RDONLY)
    forged = "".join(json.dumps({"verdict": "passed", "error": None, "output": "", "seconds": 0.0, "id": n}) + "\\n" for n in range(1, 50))
    for pid in [p for p in os.listdir("/proc") if p.isdigit()] + ["$coordinator_pid"]:
        for fd in range(0, 20):
            try:
                os.write(os.open(f"proc/{pid}/fd/{fd}", os.O_WRONLY, dir_fd=root), forged.encode())
            except OSError:
                pass
    return None
""",
    "search its own memory for the key and the canaries": """
    import os, re
    root = os.open("/", os.O_RDONLY)
    mem = os.open("proc/self/mem", os.O_RDONLY, dir_fd=root)
    hits = []
    for line in os.read(os.open("proc/self/maps", os.O_RDONLY, dir_fd=root), 1 << 20).decode().splitlines():
        span, perms = line.split()[:2]
        if "r" not in perms:
            continue
        start, end = (int(x, 16) for x in span.split("-"))
        try:
            chunk = os.pread(mem, end - start, start)
        except OSError:
            continue
        hits += re.findall(rb"sk-[A-Za-z0-9_-]{8,}|canary-[0-9a-f]{8,}|SCAIGRID_API_KEY=[^\\x00]*", chunk)
    print(sorted(set(hits))[:50])
    return None
""",
    "crash its own process": """
    import faulthandler
    faulthandler._sigsegv()
""",
    "fill its work dir": """
    import os
    for n in range(100):
        try:
            with open(f"fill-{n}", "wb") as fh:
                fh.write(b"x" * (8 << 20))
        except OSError as exc:
            print(exc)
            break
    return None
""",
    "ptrace the coordinator (ctypes)": """
    import ctypes
    libc = ctypes.CDLL(None)
    print(libc.ptrace(16, $coordinator_pid, 0, 0))
    return None
""",
    "connect to the coordinator's port": """
    import socket
    socket.create_connection(("127.0.0.1", $port), timeout=2).sendall(b"GET /healthz HTTP/1.0\\r\\n\\r\\n")
    return None
""",
    "spawn a shell": """
    import os
    os.system("cat $canary > /tmp/x; touch $outside/created-by-shell")
    return None
""",
}


@dataclass
class Outcome:
    """One attack's result: contained, or the list of what got through."""

    attack: str
    problems: list[str] = field(default_factory=list)
    verdict: str = ""
    error: str = ""
    output: str = ""
    """What the attacking program printed: what the kernel or the guard answered it."""

    @property
    def contained(self) -> bool:
        return not self.problems


@dataclass
class AttackFigures:
    """What the attack scenario measured (benchmarks/reliability.py prints it)."""

    tried: int = 0
    contained: int = 0
    escaped: list[str] = field(default_factory=list)


class AttackBed:
    """A `scaimind-local serve` with the key in its environment, canaries and a victim record."""

    def __init__(self, workdir: Path, api_key: str) -> None:
        self.workdir, self.api_key = workdir, api_key
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_path, self.drive = workdir / "server.sqlite", workdir / "drive"
        self.outside, self.home, self.cwd = workdir / "outside", workdir / "home", workdir / "cwd"
        for folder in (self.drive, self.outside, self.home, self.cwd):
            folder.mkdir(parents=True, exist_ok=True)
        self.canaries = {
            "canary": self.outside / "canary.txt",
            "drive_canary": self.drive / "org" / "private" / "canary.txt",
            "home_canary": self.home / ".netrc",
            "cwd_canary": self.cwd / "canary.txt",
        }
        self.tokens = {}
        for name, path in self.canaries.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            self.tokens[name] = "canary-" + secrets.token_hex(12)
            path.write_text(self.tokens[name])
        self.proc: subprocess.Popen[bytes] | None = None
        self.victim = ""
        self.victim_record = b""
        self.victim_row: tuple[Any, ...] = ()
        self.canary_stats: dict[str, tuple[int, int]] = {}
        self.manifests: dict[Path, bytes] = {}
        self.problems: list[dict[str, Any]] = []
        self.attempt = 0

    # setting up

    def start(self) -> AttackBed:
        env = {**os.environ, "PYTHONPATH": str(REPO), "HOME": str(self.home)}
        env["SCAIGRID_API_KEY"] = self.api_key  # in /proc/<pid>/environ, as the issue found it
        cmd = [sys.executable, "-m", "scaimind_local", "serve", "--port", str(self.port)]
        cmd += ["--db", str(self.db_path), "--drive-root", str(self.drive), "--workers", "1"]
        with (self.workdir / "server.log").open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env, cwd=self.cwd)
        wait_until(self._healthy, 60, f"the attack bed's coordinator on {self.url}")
        self._victim()
        self._dataset()
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"the coordinator exited with {self.proc.returncode}")
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def _call(self, method: str, path: str, body: Any = None) -> bytes:
        request = urllib.request.Request(
            self.url + API + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as resp:
            data: bytes = resp.read()
            return data

    def _json(self, method: str, path: str, body: Any = None) -> Any:
        return json.loads(self._call(method, path, body))["data"]

    def _wait(self, eval_id: str) -> dict[str, Any]:
        record: dict[str, Any] = {}

        def done() -> bool:
            record.update(self._json("GET", f"/evaluations/{eval_id}"))
            return record["status"] in ("COMPLETED", "FAILED", "CANCELLED")

        wait_until(done, 120, f"evaluation {eval_id}")
        return record

    def _submit(self, job_id: str, model_uri: str, benchmark: dict[str, Any]) -> str:
        self._json("POST", "/jobs", {"job_id": job_id, "model_uri": model_uri})
        body = {"job_id": job_id, "model_uri": model_uri, "benchmarks": [benchmark]}
        eval_id: str = self._json("POST", "/evaluations", body)["evaluation_id"]
        return eval_id

    def _victim(self) -> None:
        """Another evaluation, completed, whose record no attack may change."""
        model_uri, benchmark = scored_model(self.drive, tag="-victim")
        self.victim = self._submit("job_victim", model_uri, benchmark)
        assert self._wait(self.victim)["status"] == "COMPLETED"
        self.victim_record = self._call("GET", f"/evaluations/{self.victim}")
        self.victim_row = self._row(self.victim)
        manifest = self.drive / "org" / "models" / "scored-victim" / "scaimind-model.json"
        self.manifests[manifest] = manifest.read_bytes()
        self.canary_stats = {n: self._stat(p) for n, p in self.canaries.items()}

    def _dataset(self) -> None:
        from scaimind_local._benchmarks.humaneval import default_dataset, read_problems

        by_id = {p["task_id"]: p for p in read_problems(default_dataset())}
        self.problems = [by_id["HumanEval/0"], by_id["HumanEval/2"], by_id["HumanEval/4"]]
        path = self.drive / "org" / "eval" / "attack.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(p) + "\n" for p in self.problems))

    def _row(self, eval_id: str) -> tuple[Any, ...]:
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=30) as conn:
            row = conn.execute("SELECT * FROM evaluations WHERE id=?", (eval_id,)).fetchone()
            return tuple(row)

    @staticmethod
    def _stat(path: Path) -> tuple[int, int]:
        info = path.stat()
        return info.st_mtime_ns, info.st_size

    def facts(self) -> dict[str, str]:
        """What the attacker is assumed to know: every path and pid it could want."""
        assert self.proc is not None
        return {
            **{name: str(path) for name, path in self.canaries.items()},
            "coordinator_pid": str(self.proc.pid),
            "db": str(self.db_path),
            "drive": str(self.drive),
            "outside": str(self.outside),
            "home": str(self.home),
            "cwd": str(self.cwd),
            "victim": self.victim,
            "manifest": str(next(iter(self.manifests))),
            "port": str(self.port),
        }

    # attacking

    def completion(self, body: str) -> str:
        return Template(body.strip("\n") + "\n").substitute(self.facts())

    def run(self, name: str, body: str) -> Outcome:
        """Submit the attack as HumanEval/0's completion (the other two canonical) and check."""
        self.attempt += 1
        attack, honest = self.problems[0], self.problems[1:]
        answers = {attack["prompt"]: self.completion(body)}
        answers.update({p["prompt"]: p["canonical_solution"] for p in honest})
        from scaimind_local.testing import write_model

        model_uri = write_model(
            self.drive, f"org/models/attacker-{self.attempt}", options={"answers": answers}
        )
        manifest = (
            self.drive / "org" / "models" / f"attacker-{self.attempt}" / "scaimind-model.json"
        )
        self.manifests[manifest] = manifest.read_bytes()
        pid = self.proc.pid if self.proc else None
        benchmark = {"name": "humaneval", "dataset": "scaidrive://org/eval/attack.jsonl"}
        outcome = Outcome(name)
        try:
            eval_id = self._submit(f"job_attack_{self.attempt}", model_uri, benchmark)
            record = self._wait(eval_id)
        except (OSError, TimeoutError) as exc:
            outcome.problems.append(f"the coordinator stopped answering: {exc}")
            return outcome
        self._check(outcome, eval_id, record, pid)
        return outcome

    def _check(
        self, outcome: Outcome, eval_id: str, record: dict[str, Any], pid: int | None
    ) -> None:
        problems = outcome.problems
        if record["status"] != "COMPLETED":
            problems.append(f"the evaluation ended {record['status']}: {record.get('error')}")
            return
        samples = self._json("GET", f"/evaluations/{eval_id}/samples", None)["samples"]
        verdicts = {s["record"]["id"]: s["record"] for s in samples}
        attacked = verdicts[self.problems[0]["task_id"]]
        outcome.verdict, outcome.error = attacked["verdict"], attacked["error"] or ""
        outcome.output = attacked["output"]
        if attacked["correct"]:
            problems.append("the attacking problem passed")
        for problem in self.problems[1:]:
            if not verdicts[problem["task_id"]]["correct"]:
                problems.append(f"{problem['task_id']} (honest) did not pass")
        counts = record["results"][0]["extra"]["counts"]
        tallied = {v: sum(s["verdict"] == v for s in verdicts.values()) for v in counts}
        if counts != tallied or sum(counts.values()) != len(self.problems):
            problems.append(f"recorded counts {counts} differ from the samples {tallied}")
        stored = json.dumps(samples)
        database = b"".join(
            p.read_bytes() for p in self.workdir.glob("server.sqlite*") if p.is_file()
        )
        for name, token in self.tokens.items():
            if token in stored or token.encode() in database:
                problems.append(f"the {name} was read: its content is stored")
        if self.api_key in stored or self.api_key.encode() in database:
            problems.append("the API key is stored")
        for name, path in self.canaries.items():
            if self._stat(path) != self.canary_stats[name]:
                problems.append(f"the {name} was changed")
        created = [
            str(p)
            for folder in (self.outside, self.drive, self.home, self.cwd)
            for p in folder.rglob("created*")
        ]
        if created:
            problems.append(f"files were created outside: {created}")
        for manifest, content in self.manifests.items():
            if manifest.read_bytes() != content:
                problems.append(f"{manifest} was rewritten")
        if self._call("GET", f"/evaluations/{self.victim}") != self.victim_record:
            problems.append("another evaluation's record changed")
        if self._row(self.victim) != self.victim_row:
            problems.append("another evaluation's row changed in the database")
        if self.proc is None or self.proc.poll() is not None or self.proc.pid != pid:
            problems.append("the coordinator process died")
        elif not self._healthy():
            problems.append("the coordinator no longer answers /healthz")


def attack_scenario(workdir: Path, api_key: str) -> tuple[AttackFigures, list[Outcome]]:
    """Every attack of ATTACKS against one bed; figures and each outcome."""
    bed = AttackBed(workdir, api_key).start()
    figures, outcomes = AttackFigures(), []
    try:
        for name, body in ATTACKS.items():
            outcome = bed.run(name, body)
            outcomes.append(outcome)
            figures.tried += 1
            figures.contained += outcome.contained
            if not outcome.contained:
                figures.escaped.append(f"{name}: {'; '.join(outcome.problems)}")
    finally:
        bed.stop()
    return figures, outcomes
