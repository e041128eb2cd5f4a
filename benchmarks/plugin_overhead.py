"""What the pytest plugin costs: reuse-lookup requests, inactive collection time, active overhead.

1. Reuse lookup against a coordinator holding 100,000 evaluations (filled by direct SQL into its
   SQLite store): requests a fresh session makes (nothing reusable; then a match at the top of
   the listing; then a cached id), counted by a small HTTP proxy in front of the coordinator.
   Goal: bounded by the time window and the page cap, never a walk through all 100,000.
2. Collecting 2,000 ordinary tests with the plugin installed but inactive vs `-p no:scaimind`
   (median of several subprocess runs). Goal: within 3%.
3. An active session of 50 gates whose evaluation is already done vs the same suite without
   `--scaimind-job`, minus the time spent waiting on the coordinator. Goal: under 0.5 s.

    python benchmarks/plugin_overhead.py [--evaluations 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROWS = [{"prompt": f"q{i}", "reference": f"a{i}"} for i in range(10)]


class CountingProxy:
    """Forwards every request to the coordinator and records (method, path, seconds)."""

    def __init__(self, upstream: str) -> None:
        self.log: list[tuple[str, str, float]] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _forward(self) -> None:
                start = time.perf_counter()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) or None
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length")
                }
                request = urllib.request.Request(
                    upstream + self.path, data=body, method=self.command, headers=headers
                )
                try:
                    with urllib.request.urlopen(request, timeout=60) as resp:
                        status, payload = resp.status, resp.read()
                except urllib.error.HTTPError as exc:
                    status, payload = exc.code, exc.read()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                proxy.log.append((self.command, self.path, time.perf_counter() - start))

            do_GET = do_POST = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self) -> list[tuple[str, str, float]]:
        log, self.log = self.log, []
        return log


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


def gate_suite(folder: Path, dataset: str, gates: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    body = "\n".join(
        f"def test_gate_{i}():\n    assert_benchmark('custom-bench', dataset={dataset!r}, min_score={i / (gates * 2):.3f})\n"
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
    pages = sum(
        1 for m, p, _ in log if m == "GET" and p.startswith("/v1/modules/scaimind/evaluations?")
    )
    gets = sum(1 for m, p, _ in log if m == "GET" and "/evaluations/" in p)
    posts = sum(1 for m, _, _ in log if m == "POST")
    return f"{len(log):3d} requests ({pages} listing pages, {gets} GETs of one evaluation, {posts} POSTs)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--gates", type=int, default=50)
    args = parser.parse_args()

    from scaimind_local import LocalCoordinator
    from scaimind_local.testing import write_custom_dataset, write_model

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
        proxy = CountingProxy(coord.url)
        env = {**os.environ, "SCAIGRID_API_KEY": coord.api_key}
        env.pop("SCAIGRID_HOST", None)
        active = [
            "--scaimind-job=job_bench",
            f"--scaimind-host={proxy.url}",
            "--scaimind-poll-interval=0.05",
        ]

        print("\n1. reuse lookup (evaluation requests the session makes before/while waiting)")
        first = base / "suite-a"
        gate_suite(first, dataset, args.gates)
        pytest_run(first, *active, env=env)
        print(f"   nothing reusable, fresh cache : {describe(proxy.take())}  (then submits)")
        second = base / "suite-b"
        gate_suite(second, dataset, args.gates)
        pytest_run(second, *active, env=env)
        print(f"   match on top, fresh cache     : {describe(proxy.take())}")
        pytest_run(second, *active, env=env)
        print(f"   cached id (rerun)             : {describe(proxy.take())}")
        print(
            f"   baseline, paging everything   : {args.evaluations // 50 + 1:,} listing pages (page_size 50)"
        )

        print(
            f"\n3. active overhead, {args.gates} gates, evaluation already done (median of {args.repeat})"
        )
        on: list[tuple[float, float]] = []
        off: list[tuple[float, float]] = []
        http: list[float] = []
        for _ in range(args.repeat):
            on.append(pytest_run(second, *active, env=env))
            http.append(sum(s for _, _, s in proxy.take()))
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
