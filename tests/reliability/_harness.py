"""Scenarios shared by the reliability tests (small sizes) and benchmarks/reliability.py (large).

Each scenario runs the real system end to end and returns its figures; tests assert on them and
the benchmark prints them.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
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


def scored_model(drive_root: Path, *, delay: float = 0.0, tag: str = "") -> tuple[str, dict[str, Any]]:
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
    folder: Path, host: str, api_key: str, job_id: str, dataset: str, *, extra: list[str] | None = None,
    timeout: float = 240,
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """A real `pytest` gate session in a subprocess against `host`; returns it and its verdicts."""
    test_file = gate_test_file(folder, dataset)
    junit = folder / "junit.xml"
    env = {**os.environ, "SCAIGRID_API_KEY": api_key, "PYTHONPATH": str(REPO)}
    env.pop("SCAIGRID_HOST", None)
    cmd = [
        sys.executable, "-m", "pytest", str(test_file), "-p", "no:cacheprovider", "-q",
        f"--rootdir={folder}", f"--junitxml={junit}", f"--scaimind-host={host}",
        f"--scaimind-job={job_id}", "--scaimind-reuse=never", "--scaimind-timeout=120",
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
    coordinator: Any, workdir: Path, *, waits: int = 20, seed: int = 1, rate: float = 0.3,
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
            proxy.url, coordinator.api_key, timeout=1.5, poll_interval=0.1, max_poll_interval=0.5,
            call_deadline=60, max_retries=4,
        )

        def one_wait(job: str) -> str:
            submitted = client.submit(job, model_uri, [benchmark])
            final = client.wait(submitted.evaluation_id, timeout=deadline)
            return _verdict(final, job)

        def notebook() -> str:
            run = scaimind_nb.evaluate(
                notebook_job, model_uri, [benchmark], client=client, progress="off", timeout=deadline
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
                except Exception as exc:  # a session that died is a finding, not a crash of the test
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
