"""Scenarios shared by the reliability tests (small sizes) and benchmarks/reliability.py (large).

Each scenario runs the real system end to end and returns its figures; tests assert on them and
the benchmark prints them.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ._faultproxy import Fault, FaultProxy, RandomPlan

REPO = Path(__file__).resolve().parents[2]
BENCHMARK = "custom-qa"
EXPECTED_SCORE = 0.75
ROWS = [
    {"prompt": "2+2=", "reference": "4"},
    {"prompt": "capital of France?", "reference": "Paris"},
    {"prompt": "3*3=", "reference": "9"},
    {"prompt": "opposite of hot?", "reference": "cold"},
]
ANSWERS = {"2+2=": "4", "capital of France?": "Paris", "3*3=": "9", "opposite of hot?": "warm"}

WIRE_FAULTS = (
    Fault("latency", seconds=0.05),
    Fault("status", status=503),
    Fault("status", status=502),
    Fault("throttle", retry_after=0.1),
    Fault("reset_before"),
    Fault("reset_after"),
    Fault("truncate"),
    Fault("garbage"),
    Fault("stall", seconds=2.5),
)


def scored_model(
    drive_root: Path, *, delay: float = 0.0, tag: str = ""
) -> tuple[str, dict[str, Any]]:
    """A scripted model scoring EXPECTED_SCORE on a 4-row custom dataset: (model_uri, benchmark)."""
    from scaimind_local.testing import write_custom_dataset, write_model

    model_uri = write_model(
        drive_root, f"org/models/scored{tag}", options={"answers": ANSWERS, "delay": delay}
    )
    dataset = write_custom_dataset(drive_root, f"org/eval/qa{tag}.jsonl", ROWS)
    return model_uri, {"name": BENCHMARK, "dataset": dataset}


def evaluations_per_job(db_path: Path) -> Counter[str]:
    """How many evaluation rows the coordinator's SQLite file holds per job id."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT job_id, COUNT(*) FROM evaluations GROUP BY job_id").fetchall()
    return Counter({job: n for job, n in rows})


def gate_test_file(folder: Path, dataset: str) -> Path:
    """A gate session's test file: one gate that must pass, one that must fail."""
    path = folder / "test_gates.py"
    path.write_text(
        textwrap.dedent(
            f"""
            from pytest_scaimind import assert_benchmark

            def test_good_enough():
                assert_benchmark({BENCHMARK!r}, dataset={dataset!r}, min_score=0.7)

            def test_catches_regression():
                assert_benchmark({BENCHMARK!r}, dataset={dataset!r}, min_score=0.9)
            """
        )
    )
    return path


def junit_verdicts(path: Path) -> dict[str, str]:
    """Test name -> passed / failed / error / skipped, from a JUnit XML file."""
    verdicts = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome = "passed"
        for kind in ("failure", "error", "skipped"):
            if case.find(kind) is not None:
                outcome = {"failure": "failed"}.get(kind, kind)
        verdicts[case.get("name", "")] = outcome
    return verdicts


def run_gate_session(
    folder: Path,
    host: str,
    api_key: str,
    job_id: str,
    dataset: str,
    *,
    extra: list[str] | None = None,
    timeout: float = 240,
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """A real `pytest` gate session in a subprocess against `host`; returns it and its verdicts."""
    test_file = gate_test_file(folder, dataset)
    junit = folder / "junit.xml"
    env = {**os.environ, "SCAIGRID_API_KEY": api_key, "PYTHONPATH": str(REPO)}
    env.pop("SCAIGRID_HOST", None)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(test_file),
        "-p",
        "no:cacheprovider",
        "-q",
        f"--rootdir={folder}",
        f"--junitxml={junit}",
        f"--scaimind-host={host}",
        f"--scaimind-job={job_id}",
        "--scaimind-reuse=never",
        "--scaimind-timeout=120",
        *(extra or []),
    ]
    proc = subprocess.run(
        cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    verdicts = junit_verdicts(junit) if junit.exists() else {}
    return proc, verdicts


@dataclass
class WireFigures:
    """What the wire-fault scenario measured."""

    faults: Counter[str] = field(default_factory=Counter)
    sessions: int = 0
    survived: int = 0
    wrong: list[str] = field(default_factory=list)
    duplicates: int = 0
    lost: int = 0
    seconds: float = 0.0
    forwarded_posts: int = 0


def wire_scenario(
    coordinator: Any,
    workdir: Path,
    *,
    waits: int = 20,
    seed: int = 1,
    rate: float = 0.3,
    deadline: float = 120.0,
) -> WireFigures:
    """A gate session, a notebook-style evaluate() and `waits` concurrent Client.waits, all at once,
    through a fault-injecting proxy; then count the coordinator's evaluations per submission."""
    import scaimind_nb

    model_uri, benchmark = scored_model(coordinator.drive_root, delay=0.05, tag=f"-wire{seed}")
    jobs = [f"job_wire{seed}_{i}" for i in range(waits)]
    gate_job, notebook_job = f"job_wire{seed}_gate", f"job_wire{seed}_notebook"
    for job in [*jobs, gate_job, notebook_job]:
        coordinator.register_job(job, model_uri)
    figures = WireFigures(sessions=waits + 2)
    plan = RandomPlan(seed=seed, rate=rate, faults=WIRE_FAULTS, max_streak=2)
    started = time.monotonic()
    with FaultProxy(coordinator.url, plan) as proxy:
        client = scaimind_nb.Client(
            proxy.url,
            coordinator.api_key,
            timeout=1.5,
            poll_interval=0.1,
            max_poll_interval=0.5,
            call_deadline=60,
            max_retries=4,
        )

        def one_wait(job: str) -> str:
            submitted = client.submit(job, model_uri, [benchmark])
            final = client.wait(submitted.evaluation_id, timeout=deadline)
            return _verdict(final, job)

        def notebook() -> str:
            run = scaimind_nb.evaluate(
                notebook_job,
                model_uri,
                [benchmark],
                client=client,
                progress="off",
                timeout=deadline,
            )
            return _verdict(run.evaluation, notebook_job)

        def gate() -> str:
            folder = workdir / f"gate-{seed}"
            folder.mkdir(parents=True, exist_ok=True)
            proc, verdicts = run_gate_session(
                folder, proxy.url, coordinator.api_key, gate_job, benchmark["dataset"]
            )
            expected = {"test_good_enough": "passed", "test_catches_regression": "failed"}
            if verdicts != expected:
                return f"gate session: {verdicts} (rc {proc.returncode})\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
            return ""

        with ThreadPoolExecutor(max_workers=waits + 2) as pool:
            futures = [pool.submit(gate), pool.submit(notebook)]
            futures += [pool.submit(one_wait, job) for job in jobs]
            for future in futures:
                try:
                    problem = future.result(timeout=deadline + 60)
                except (
                    Exception
                ) as exc:  # a session that died is a finding, not a crash of the test
                    problem = f"{type(exc).__name__}: {exc}"
                if problem:
                    figures.wrong.append(problem)
                else:
                    figures.survived += 1
        client.close()
        figures.faults = Counter(proxy.counts)
        figures.forwarded_posts = proxy.forwarded["POST /v1/modules/scaimind/evaluations"]
    figures.seconds = time.monotonic() - started
    counts = evaluations_per_job(coordinator.db_path)
    for job in [*jobs, gate_job, notebook_job]:
        figures.duplicates += max(0, counts[job] - 1)
        figures.lost += counts[job] == 0
    return figures


def _verdict(evaluation: Any, job: str) -> str:
    """'' when the evaluation is the right one, COMPLETED with the expected score; else why not."""
    status = evaluation.status.value
    if evaluation.job_id != job or status != "COMPLETED":
        return f"{job}: {evaluation.job_id} ended {status} ({evaluation.error})"
    score = evaluation.score(BENCHMARK)
    return "" if abs(score - EXPECTED_SCORE) < 1e-9 else f"{job}: score {score}"


@dataclass
class CrashFigures:
    """What the crash-restart scenario measured."""

    kills: int = 0
    evaluations: int = 0
    completed_right: int = 0
    lost: int = 0
    ran_twice: list[str] = field(default_factory=list)
    interrupted: int = 0
    wrong_waits: list[str] = field(default_factory=list)
    longest_recovery: float = 0.0
    seconds: float = 0.0


def free_port() -> int:
    """A loopback port that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """`scaimind-local serve` in a subprocess with a fixed port, db and drive; SIGKILL-able."""

    def __init__(
        self, workdir: Path, api_key: str, *, workers: int = 2, log_level: str = "warning"
    ) -> None:
        self.workdir, self.api_key, self.workers = workdir, api_key, workers
        self.log_level = log_level
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_path = workdir / "server.sqlite"
        self.drive_root = workdir / "drive"
        self.log = workdir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> float:
        """Start serving; returns the seconds until /healthz answered."""
        started = time.monotonic()
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("SCAIGRID_API_KEY", None)
        cmd = [
            sys.executable,
            "-m",
            "scaimind_local",
            "serve",
            "--port",
            str(self.port),
            "--db",
            str(self.db_path),
            "--drive-root",
            str(self.drive_root),
            "--workers",
            str(self.workers),
            "--api-key",
            self.api_key,
            "--log-level",
            self.log_level,
        ]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env, cwd=self.workdir)
        wait_until(self.healthy, timeout, f"scaimind-local serve on {self.url} (see {self.log})")
        return time.monotonic() - started

    def healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"the server exited with {self.proc.returncode}; see {self.log}")
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=1) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, exactly like a power cut of the process."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def _register(url: str, api_key: str, job_id: str, model_uri: str) -> None:
    body = json.dumps({"job_id": job_id, "model_uri": model_uri, "status": "COMPLETED"}).encode()
    request = urllib.request.Request(
        url + "/v1/modules/scaimind/jobs",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _await_work_in(server: ServerProcess, runs_log: Path, timeout: float) -> None:
    """Block until the current server process has answered a prompt, i.e. an evaluation is running
    in it, so that the kill that follows lands mid-run however slow the machine is."""
    assert server.proc is not None
    pid = server.proc.pid
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if runs_log.exists() and any(
            json.loads(line)["pid"] == pid for line in runs_log.read_text().splitlines()
        ):
            return
        time.sleep(0.05)
    raise AssertionError(f"no evaluation started running in server pid {pid} within {timeout} s")


def crash_scenario(
    workdir: Path,
    api_key: str,
    *,
    evaluations: int = 30,
    kills: int = 3,
    seed: int = 1,
    delay: float = 0.15,
    deadline: float = 180.0,
) -> CrashFigures:
    """SIGKILL and restart the server `kills` times while `evaluations` are queued or running and
    one client wait per evaluation spans the crashes; then check every result and every run."""
    import scaimind_nb
    from scaimind_local.testing import write_custom_dataset, write_model

    rng = random.Random(seed)
    server = ServerProcess(workdir, api_key)
    runs_log = workdir / "runs.jsonl"
    answers, benchmarks = {}, []
    for i in range(evaluations):
        rows = [{**row, "prompt": f"e{i} {row['prompt']}"} for row in ROWS]
        answers.update({f"e{i} {p}": a for p, a in ANSWERS.items()})
        dataset = write_custom_dataset(server.drive_root, f"org/crash/qa{i}.jsonl", rows)
        # one sample a call, so a kill lands between the samples of a running evaluation
        benchmarks.append(
            {"name": BENCHMARK, "dataset": dataset, "parameters": {"batch_size": "1"}}
        )
    model_uri = write_model(
        server.drive_root,
        "org/models/recorder",
        "tests.reliability._recorder:RecordingModel",
        {"answers": answers, "delay": delay, "log": str(runs_log)},
    )
    figures = CrashFigures(evaluations=evaluations)
    kill_times: list[float] = []
    started = time.monotonic()
    server.start()
    try:
        client = scaimind_nb.Client(
            server.url,
            api_key,
            timeout=2.0,
            poll_interval=0.1,
            max_poll_interval=0.3,
            call_deadline=60,
        )
        ids = []
        for i, benchmark in enumerate(benchmarks):
            _register(server.url, api_key, f"job_crash_{i}", model_uri)
            ids.append(client.submit(f"job_crash_{i}", model_uri, [benchmark]).evaluation_id)
        with ThreadPoolExecutor(max_workers=evaluations) as pool:
            waits = [pool.submit(client.wait, eid, timeout=deadline) for eid in ids]
            for _ in range(kills):
                _await_work_in(server, runs_log, timeout=60)
                time.sleep(rng.uniform(0.0, 0.25))  # < the 3 samples left of a run
                server.kill()
                kill_times.append(time.time())
                down = time.monotonic()
                server.start()
                figures.kills += 1
                figures.longest_recovery = max(figures.longest_recovery, time.monotonic() - down)
            for i, future in enumerate(waits):
                try:
                    problem = _verdict(future.result(timeout=deadline + 30), f"job_crash_{i}")
                except Exception as exc:
                    problem = f"wait for {ids[i]}: {type(exc).__name__}: {exc}"
                if problem:
                    figures.wrong_waits.append(problem)
        client.close()
    finally:
        server.stop()
    figures.seconds = time.monotonic() - started
    with sqlite3.connect(server.db_path) as conn:
        stored = {
            r[0]: r[1:]
            for r in conn.execute("SELECT id, status, results, completed_at FROM evaluations")
        }
    calls = [json.loads(line) for line in runs_log.read_text().splitlines()]
    for i, eid in enumerate(ids):
        if eid not in stored:
            figures.lost += 1
            continue
        status, results, completed_at = stored[eid]
        scores = [r["score"] for r in json.loads(results)]
        if status == "COMPLETED" and scores == [EXPECTED_SCORE]:
            figures.completed_right += 1
        figures.interrupted += (
            len({c["pid"] for c in calls if c["prompts"][0].startswith(f"e{i} ")}) > 1
        )
        last_prompt = f"e{i} {ROWS[-1]['prompt']}"
        finished = [c["t"] for c in calls if last_prompt in c["prompts"]]
        done_at = _epoch(completed_at) if completed_at else float("inf")
        # a finished run counts unless a kill interrupted it before its result was committed
        completed_runs = [t for t in finished if not any(t <= k <= done_at for k in kill_times)]
        if len(completed_runs) != 1:
            figures.ran_twice.append(f"{eid}: {len(completed_runs)} completed runs")
    return figures


@dataclass
class SoakFigures:
    """What the load/soak scenario measured."""

    evaluations: int = 0
    completed_right: int = 0
    paginations: int = 0
    pagination_problems: list[str] = field(default_factory=list)
    polls: int = 0
    rss_after_first_100_mb: float = 0.0
    rss_after_run_mb: float = 0.0
    memory_growth: float = 0.0
    integrity: str = ""
    seconds: float = 0.0


def _completed(db_path: Path) -> int:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30) as conn:
        return int(
            conn.execute("SELECT COUNT(*) FROM evaluations WHERE status='COMPLETED'").fetchone()[0]
        )


def soak_scenario(
    workdir: Path, api_key: str, *, evaluations: int = 150, page_size: int = 7
) -> SoakFigures:
    """Many small evaluations through two workers while clients poll and page the listing."""
    import psutil

    import scaimind_nb

    server = ServerProcess(workdir, api_key, workers=2)
    model_uri, benchmark = scored_model(server.drive_root, tag="-soak")
    figures = SoakFigures(evaluations=evaluations)
    started = time.monotonic()
    server.start()
    assert server.proc is not None
    process = psutil.Process(server.proc.pid)
    submitted: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    try:
        _register(server.url, api_key, "job_soak", model_uri)
        client = scaimind_nb.Client(server.url, api_key, timeout=10, call_deadline=120)

        def submit(count: int) -> None:
            for _ in range(count):
                eid = client.submit("job_soak", model_uri, [benchmark]).evaluation_id
                with lock:
                    submitted.append(eid)

        def paginate() -> None:
            while not stop.is_set():
                with lock:
                    before = set(submitted)
                listed = [e.evaluation_id for e in client.iter_evaluations(page_size=page_size)]
                figures.paginations += 1
                repeated = len(listed) - len(set(listed))
                missing = before - set(listed)
                if repeated or missing:
                    figures.pagination_problems.append(
                        f"{repeated} listed twice, {len(missing)} missing"
                    )

        def poll() -> None:
            rng = random.Random(0)
            while not stop.is_set():
                with lock:
                    eid = rng.choice(submitted) if submitted else None
                if eid:
                    client.get(eid)
                    figures.polls += 1
                time.sleep(0.01)

        first = min(100, evaluations)
        submit(first)
        wait_until(lambda: _completed(server.db_path) >= first, 300, f"{first} completions")
        figures.rss_after_first_100_mb = process.memory_info().rss / 2**20
        with ThreadPoolExecutor(max_workers=3) as pool:
            watchers = [pool.submit(paginate), pool.submit(poll)]
            try:
                submit(evaluations - first)
                wait_until(
                    lambda: _completed(server.db_path) >= evaluations, 600, "all completions"
                )
            finally:
                stop.set()
            for watcher in watchers:
                watcher.result()
        figures.rss_after_run_mb = process.memory_info().rss / 2**20
        figures.memory_growth = figures.rss_after_run_mb / figures.rss_after_first_100_mb - 1
        for eid in submitted:
            if _verdict(client.get(eid), "job_soak") == "":
                figures.completed_right += 1
        client.close()
    finally:
        server.stop()
    with sqlite3.connect(server.db_path) as conn:
        figures.integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
    figures.seconds = time.monotonic() - started
    return figures


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` until true, or raise TimeoutError naming `what`."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError(f"{what} not reached within {timeout}s")
        time.sleep(0.05)


def dump(figures: object) -> str:
    """Figures as one JSON line (for logs and the benchmark)."""
    return json.dumps(figures.__dict__, default=str, sort_keys=True)
