"""Reliability figures: wire faults, crash-restart loops, a soak run and hostile requests.

Goals: every session survives the wire faults with no duplicate and no lost evaluation; no
evaluation is lost or completed twice across SIGKILLs; server memory after the soak within 20%
of its memory after the first 100 evaluations; every attack of model-written code contained; no
hostile request gets a 5xx. Each figure is printed beside its baseline (the same scenario without
faults, or the goal).
Run: ``python benchmarks/reliability.py [--soak N] [--kills K] [--seeds S] [--parts ...]``
(defaults 1000, 6, 3, every part).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scaimind_local import LocalCoordinator
from tests.reliability._attacks import attack_scenario
from tests.reliability._harness import (
    crash_scenario,
    soak_scenario,
    wire_scenario,
)

ROOT = Path(__file__).resolve().parents[1]


def _row(name: str, value: object, baseline: object) -> None:
    print(f"  {name:<34} {value!s:>14}   baseline {baseline}")


def wire(base: Path, key: str, seeds: int) -> None:
    """The wire-fault scenario for several seeds, after one clean run as the baseline."""
    print("faults on the wire (gate session + notebook evaluate + 20 waits, at once, per seed)")
    with LocalCoordinator(base / "clean.sqlite", base / "clean-drive", api_key=key, workers=2) as c:
        clean = wire_scenario(c, base / "clean", seed=0, rate=0.0)
    faults: Counter[str] = Counter()
    sessions = survived = lost = duplicates = 0
    slowest = 0.0
    for seed in range(1, seeds + 1):
        with LocalCoordinator(
            base / f"wire{seed}.sqlite", base / f"drive{seed}", api_key=key, workers=2
        ) as coordinator:
            figures = wire_scenario(coordinator, base / f"wire{seed}", seed=seed, rate=0.3)
        faults += figures.faults
        sessions += figures.sessions
        survived += figures.survived
        lost += figures.lost
        duplicates += figures.duplicates
        slowest = max(slowest, figures.seconds)
        for problem in figures.wrong:
            print("  !", problem.splitlines()[0])
    _row("faults injected", sum(faults.values()), 0)
    print("    by kind:", ", ".join(f"{k} {n}" for k, n in sorted(faults.items())))
    _row("sessions survived", f"{survived}/{sessions}", f"{clean.survived}/{clean.sessions}")
    _row("evaluations lost", lost, clean.lost)
    _row("duplicate submissions", duplicates, clean.duplicates)
    _row("slowest scenario (s)", f"{slowest:.1f}", f"{clean.seconds:.1f} without faults")


def crash(base: Path, key: str, kills: int) -> None:
    print(f"crashes (30 evaluations, {kills} SIGKILL + restart cycles)")
    figures = crash_scenario(base / "crash", key, evaluations=30, kills=kills, seed=11)
    _row("kills", figures.kills, "-")
    _row("runs interrupted by a kill", figures.interrupted, "-")
    _row("evaluations lost", figures.lost, 0)
    _row("completed with the right score", f"{figures.completed_right}/30", "30/30")
    _row("ran twice to completion", len(figures.ran_twice), 0)
    _row("client waits wrong", len(figures.wrong_waits), 0)
    _row("longest recovery after a crash (s)", f"{figures.longest_recovery:.2f}", "-")


def soak(base: Path, key: str, n: int) -> None:
    print(f"load and soak ({n} evaluations, 2 workers, a pager and a poller meanwhile)")
    figures = soak_scenario(base / "soak", key, evaluations=n)
    _row("completed with the right score", f"{figures.completed_right}/{n}", f"{n}/{n}")
    _row("full paginations while submitting", figures.paginations, "-")
    _row("pagination problems", len(figures.pagination_problems), 0)
    _row("polls", figures.polls, "-")
    _row("RSS after first 100 (MiB)", f"{figures.rss_after_first_100_mb:.1f}", "-")
    _row("RSS after the run (MiB)", f"{figures.rss_after_run_mb:.1f}", "-")
    _row("memory growth", f"{figures.memory_growth:+.1%}", "<= +20%")
    _row("PRAGMA integrity_check", figures.integrity, "ok")
    _row("evaluations/s", f"{n / figures.seconds:.1f}", "-")


def attacks(base: Path, key: str) -> None:
    print("attacks by model-written code (humaneval completions through a real coordinator)")
    figures, outcomes = attack_scenario(base / "attacks", key)
    _row("attacks tried / contained", f"{figures.tried} / {figures.contained}", "all contained")
    for outcome in outcomes:
        said = (outcome.output.strip().splitlines() or [""])[0]
        how = (said if outcome.error == "AssertionError" and said else outcome.error)[:70]
        print(f"    {'ok ' if outcome.contained else 'ESCAPED'} {outcome.attack}: {how}")
    for escaped in figures.escaped:
        print("  !", escaped)


def hostile(base: Path) -> None:
    """The hostile-request suite, run as the tests run it, counting what it sends."""
    print("hostile requests (tests/reliability/test_hostile_http.py, schemathesis included)")
    tally = base / "hostile.json"
    started = time.monotonic()
    env = {**os.environ, "SCAIMIND_HOSTILE_TALLY": str(tally)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    suite = ["tests/reliability/test_hostile_http.py", "-q", "-p", "no:cacheprovider"]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *suite],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    counts = json.loads(tally.read_text()) if tally.exists() else {}
    _row("hostile requests tried", counts.get("tried", 0), "-")
    _row("answered 5xx", counts.get("5xx", 0), 0)
    _row("suite", proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "?", "passed")
    _row("seconds", f"{time.monotonic() - started:.0f}", "-")


PARTS = ("wire", "crash", "soak", "attacks", "hostile")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--soak", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    args = parser.parse_args()
    key = "sk-bench-" + secrets.token_urlsafe(18)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="scaimind-reliability-") as tmp:
        base = Path(tmp)
        parts = {
            "wire": lambda: wire(base, key, args.seeds),
            "crash": lambda: crash(base, key, args.kills),
            "soak": lambda: soak(base, key, args.soak),
            "attacks": lambda: attacks(base, key),
            "hostile": lambda: hostile(base),
        }
        for name in args.parts:
            parts[name]()
            print()
    print(f"total {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
