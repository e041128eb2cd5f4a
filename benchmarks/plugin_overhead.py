"""What the pytest plugin costs: precheck and reuse-lookup requests, inactive collection time,
active overhead.

1. Precheck and reuse lookup against a coordinator holding 100,000 evaluations (filled by direct
   SQL into its SQLite store): requests a session of 50 gates makes before and while waiting
   (nothing reusable; a match at the top of the listing; cached ids; a `-k` subset of a larger
   evaluation; a coordinator without the precheck route), counted by
   `scaimind_local.testing.Proxy` in front of the coordinator, printed beside the figures of the
   previous design (one request key per batch, no precheck; measured with this script on main at
   5fb5479 and kept below as PREVIOUS). Goal: bounded by the time window and the page cap,
   never a walk through all 100,000; the precheck costs one request.
2. Collecting 2,000 ordinary tests with the plugin installed but inactive vs `-p no:scaimind`
   (median of several subprocess runs). Goal: within 3%.
3. An active session of 50 gates whose evaluation is already done vs the same suite without
   `--scaimind-job`, minus the time spent waiting on the coordinator. Goal: under 0.5 s.

    python benchmarks/plugin_overhead.py [--evaluations 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROWS = [{"prompt": f"q{i}", "reference": f"a{i}"} for i in range(10)]
PREVIOUS = {
    "nothing reusable, fresh cache": "28 requests (25 listing pages, 1 GETs of one evaluation, 1 POSTs)",
    "match on top, fresh cache": "4 requests (1 listing pages, 2 GETs of one evaluation, 0 POSTs)",
    "cached ids (rerun)": "3 requests (0 listing pages, 2 GETs of one evaluation, 0 POSTs)",
}
"""Section 1 as the previous design answered it (job GET included), for the same 50-gate suite."""


def fill(db_path: Path, count: int) -> None:
    """Insert `count` COMPLETED evaluations of other jobs, spread over the last 30 days."""
    now = datetime.now(UTC)
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    result = json.dumps(
        [
            {
                "benchmark": "custom-other",
                "score": 0.5,
                "metrics": {"exact_match": 0.5},
                "num_samples": 10,
            }
        ]
    )
    bench = json.dumps([{"name": "custom-other", "dataset": "scaidrive://org/eval/other.jsonl"}])
    rows = []
    for i in range(count):
        ts = (now - timedelta(days=30) + timedelta(seconds=30 * 86400 * i / count)).strftime(fmt)
        rows.append(
            (
                f"eval_fill{i:07d}",
                f"job_other{i % 500}",
                "scaidrive://org/models/other",
                "",
                "COMPLETED",
                bench,
                "[]",
                result,
                ts,
                ts,
            )
        )
    with sqlite3.connect(db_path) as conn:
        conn.executemany(
            "INSERT INTO evaluations (id, job_id, model_uri, checkpoint_id, status, benchmarks, progress,"
            " results, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def gate_suite(folder: Path, dataset: str, gates: int, specs: int = 1) -> None:
    """`gates` gates over `specs` distinct specs: custom-bench, or custom-wide0, custom-wide1, ..."""
    folder.mkdir(parents=True, exist_ok=True)
    names = ["custom-bench"] if specs == 1 else [f"custom-wide{j}" for j in range(specs)]
    body = "\n".join(
        f"def test_gate_{i}():\n    assert_benchmark({names[i % specs]!r}, "
        f"dataset={dataset!r}, min_score={i / (gates * 2):.3f})\n"
        for i in range(gates)
    )
    (folder / "test_gates.py").write_text("from pytest_scaimind import assert_benchmark\n\n" + body)


def pytest_run(folder: Path, *args: str, env: dict[str, str]) -> tuple[float, float]:
    """Run pytest in a subprocess; (wall seconds, CPU seconds of the child): CPU is load-proof."""
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 5):
        sys.exit(f"pytest failed in {folder}:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return elapsed, (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)


def describe(log: list[tuple[str, str, float]]) -> str:
    """The requests of a session by kind (a precheck call is counted answered or refused)."""
    prefix = "/v1/modules/scaimind"
    pages = sum(1 for m, p, _ in log if m == "GET" and p.startswith(prefix + "/evaluations?"))
    gets = sum(1 for m, p, _ in log if m == "GET" and "/evaluations/" in p)
    submits = sum(1 for m, p, _ in log if m == "POST" and p == prefix + "/evaluations")
    prechecks = sum(1 for m, p, _ in log if m == "POST" and p == prefix + "/precheck")
    return (
        f"{len(log)} requests ({pages} listing pages, {gets} GETs of one evaluation, "
        f"{submits} submits, {prechecks} prechecks)"
    )


def show(name: str, log: list[tuple[str, str, float]]) -> None:
    print(f"   {name}")
    if name in PREVIOUS:
        print(f"      previous design: {PREVIOUS[name]}")
    print(f"      now            : {describe(log)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--gates", type=int, default=50)
    args = parser.parse_args()

    from scaimind_local import LocalCoordinator
    from scaimind_local.testing import Proxy, write_custom_dataset, write_model

    base = Path(tempfile.mkdtemp(prefix="scaimind-plugin-bench-"))
    with LocalCoordinator(base / "db.sqlite", base / "drive") as coord:
        t0 = time.perf_counter()
        fill(coord.db_path, args.evaluations)
        print(
            f"filled the store with {args.evaluations:,} evaluations in {time.perf_counter() - t0:.1f}s"
        )
        model = write_model(
            coord.drive_root,
            "org/models/m",
            options={"answers": {r["prompt"]: r["reference"] for r in ROWS}},
        )
        dataset = write_custom_dataset(coord.drive_root, "org/eval/bench.jsonl", ROWS)
        coord.register_job("job_bench", model)
        proxy = Proxy(coord.url)
        older = Proxy(coord.url, refuse=("/precheck",))
        env = {**os.environ, "SCAIGRID_API_KEY": coord.api_key}
        env.pop("SCAIGRID_HOST", None)

        def active(job: str = "job_bench", host: str = proxy.url) -> list[str]:
            return [
                f"--scaimind-job={job}",
                f"--scaimind-host={host}",
                "--scaimind-poll-interval=0.05",
            ]

        def session(folder: str, *extra: str, specs: int = 1, **kw: str) -> Path:
            suite = base / folder
            if not suite.exists():
                gate_suite(suite, dataset, args.gates, specs)
            pytest_run(suite, *active(**kw), *extra, env=env)
            return suite

        print(
            f"\n1. requests before and while waiting: {args.gates} gates on a coordinator holding "
            f"{args.evaluations:,} evaluations"
        )
        session("suite-a")
        show("nothing reusable, fresh cache", proxy.take())
        session("suite-b")
        show("match on top, fresh cache", proxy.take())
        session("suite-b")
        show("cached ids (rerun)", proxy.take())
        session("suite-c", specs=10)
        proxy.take()
        subset = [f"test_gates.py::test_gate_{i}" for i in range(args.gates) if i % 10 < 5]
        session("suite-d", *subset, specs=10)
        show("a subset (5 of 10 specs), served by a larger evaluation, fresh cache", proxy.take())
        coord.register_job("job_older", model)
        session("suite-e", job="job_older", host=older.url)
        show("no precheck route: nothing reusable, fresh cache", older.take())
        session("suite-f", job="job_older", host=older.url)
        show("no precheck route: match on top, fresh cache", older.take())
        print(
            f"   baseline, paging everything   : {args.evaluations // 50 + 1:,} listing pages (page_size 50)"
        )

        second = base / "suite-b"
        print(
            f"\n3. active overhead, {args.gates} gates, evaluation already done (median of {args.repeat})"
        )
        on: list[tuple[float, float]] = []
        off: list[tuple[float, float]] = []
        http: list[float] = []
        for _ in range(args.repeat):
            on.append(pytest_run(second, *active(), env=env))
            http.append(sum(seconds for _, _, seconds in proxy.take()))
            off.append(pytest_run(second, env=env))
        waiting = statistics.median(http)
        for kind, i in (("wall", 0), ("CPU", 1)):
            a, b = statistics.median(r[i] for r in on), statistics.median(r[i] for r in off)
            own = a - b - (waiting if i == 0 else 0.0)
            print(
                f"   {kind:4}: without --scaimind-job {b:.3f}s, with {a:.3f}s -> plugin itself {own:.3f}s (goal < 0.5s)"
            )
        print(
            f"   (wall excludes {waiting:.3f}s spent in coordinator requests; CPU is the pytest process only)"
        )
        proxy.stop()
        older.stop()

    print(f"\n2. collecting {args.tests:,} ordinary tests (median of {args.repeat})")
    suite = base / "plain"
    suite.mkdir()
    for f in range(args.tests // 100):
        (suite / f"test_plain_{f}.py").write_text(
            "".join(f"def test_{i}():\n    assert {i} == {i}\n\n" for i in range(100))
        )
    inactive: list[tuple[float, float]] = []
    disabled: list[tuple[float, float]] = []
    for _ in range(args.repeat):
        inactive.append(pytest_run(suite, "--collect-only", "-p", "no:cacheprovider", env=env))
        disabled.append(
            pytest_run(
                suite, "--collect-only", "-p", "no:cacheprovider", "-p", "no:scaimind", env=env
            )
        )
    for kind, i in (("wall", 0), ("CPU", 1)):
        a, b = statistics.median(r[i] for r in inactive), statistics.median(r[i] for r in disabled)
        print(
            f"   {kind:4}: -p no:scaimind {b:.3f}s, plugin inactive {a:.3f}s, ratio {a / b:.3f} (goal <= 1.03)"
        )


if __name__ == "__main__":
    main()
