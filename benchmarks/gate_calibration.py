"""Calibration and speed of the regression gates: paired against unpaired, on simulated runs.

For n = 164 (HumanEval), 1,000 and 14,042 (MMLU) binary items with a realistic discordance
between two runs, it judges simulated baseline/candidate pairs with the plugin's own code path
(`pytest_scaimind._gates.judge` on a `max_drop` gate with `confidence=0.95`), once with both
sides' per-item outcomes (paired, Newcombe) and once from the figures alone (unpaired), and
prints side by side:

- A/A (no true change): the share flagged "regressed" (must not exceed 1 - confidence) and the
  share that pass;
- a true drop equal to the margin: the share that pass (a wrong pass; must not exceed
  (1 - confidence) / 2, the one-sided error of a non-inferiority test);
- a true 3-point drop: the share caught ("regressed") and the share blocked (regressed or
  inconclusive, which fails by default);

then the size of a baseline file holding 14,042 MMLU per-item outcomes and the time one paired
judgement (and its Holm p-values) takes. Exits 1 if a calibration bound is exceeded.

    python benchmarks/gate_calibration.py [--sessions 1000] [--discordance 0.15] [--quick]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from pytest_scaimind._baseline import Baseline
from pytest_scaimind._gates import Measured, Reference, assess, judge, make_gate
from pytest_scaimind._record import Action, GateRecord, Outcome
from scaimind_nb.stats import ItemOutcomes

CONFIDENCE = 0.95
MARGINS = (0.01, 0.02)
SIZES = (164, 1000, 14042)
P_BASE = 0.6


def simulate(
    rng: random.Random, n: int, delta: float, discordance: float
) -> tuple[ItemOutcomes, ItemOutcomes]:
    """Baseline and candidate on the same n items: they disagree on about `discordance` of them,
    and the candidate's true accuracy differs by `delta`."""
    better, worse = (discordance + delta) / 2, (discordance - delta) / 2
    base, cand = {}, {}
    for i in range(n):
        u = rng.random()
        if u < better:
            b, c = 0.0, 1.0
        elif u < better + worse:
            b, c = 1.0, 0.0
        else:
            b = c = float(rng.random() < P_BASE)
        base[f"q/{i}"], cand[f"q/{i}"] = b, c
    return ItemOutcomes(base, {}), ItemOutcomes(cand, {})


def verdicts(base: ItemOutcomes, cand: ItemOutcomes, margin: float) -> dict[str, Outcome]:
    """The plugin's verdict on one pair, paired and unpaired."""
    gate = make_gate("mmlu", max_drop=margin, confidence=CONFIDENCE)
    out = {}
    for method, paired in (("paired", True), ("unpaired", False)):
        measured = Measured(
            "accuracy", cand.mean, cand.n, "e", proportion=True, items=cand if paired else None
        )
        reference = Reference(base.mean, "simulated", base.n, None, base if paired else None)
        out[method] = judge(gate, measured, reference).outcome
    return out


def calibrate(sessions: int, discordance: float, sizes: tuple[int, ...]) -> bool:
    rng = random.Random(20240611)
    print(
        f"gate calibration: binary items, baseline accuracy {P_BASE:.2f}, discordance "
        f"{discordance:.0%}, confidence {CONFIDENCE:.0%}, {sessions:,} sessions per cell"
    )
    head = (
        f"{'n':>6}  {'max_drop':>8}  {'method':<8}  {'A/A regressed':>13}  {'A/A passed':>10}  "
        f"{'drop=margin passed':>18}  {'3-pt caught':>11}  {'3-pt blocked':>12}"
    )
    print(head)
    print("-" * len(head))
    ok = True
    for n in sizes:
        counts: dict[tuple[float, str, str], int] = {}
        started = time.perf_counter()
        for scenario, delta in (("aa", 0.0), ("edge", None), ("drop", -0.03)):
            for margin in MARGINS:
                true_delta = -margin if delta is None else delta
                for _ in range(sessions):
                    base, cand = simulate(rng, n, true_delta, discordance)
                    for method, outcome in verdicts(base, cand, margin).items():
                        key = (margin, method, f"{scenario}:{outcome.value}")
                        counts[key] = counts.get(key, 0) + 1
        for margin in MARGINS:
            for method in ("paired", "unpaired"):

                def share(
                    scenario: str,
                    *outcomes: Outcome,
                    key: tuple[float, str] = (margin, method),
                    tally: dict[tuple[float, str, str], int] = counts,
                ) -> float:
                    hits = sum(tally.get((*key, f"{scenario}:{o.value}"), 0) for o in outcomes)
                    return hits / sessions

                aa_regressed = share("aa", Outcome.FAIL)
                edge_passed = share("edge", Outcome.PASS)
                ok &= aa_regressed <= 1 - CONFIDENCE and edge_passed <= (1 - CONFIDENCE) / 2 + 0.01
                print(
                    f"{n:>6}  {margin:>8.2f}  {method:<8}  {aa_regressed:>13.1%}  "
                    f"{share('aa', Outcome.PASS):>10.1%}  {edge_passed:>18.1%}  "
                    f"{share('drop', Outcome.FAIL):>11.1%}  "
                    f"{share('drop', Outcome.FAIL, Outcome.INCONCLUSIVE):>12.1%}"
                )
        print(f"{'':>6}  ({time.perf_counter() - started:.0f} s for n={n:,})")
    bound = (
        f"A/A regressed <= {1 - CONFIDENCE:.0%}, drop=margin passed <= {(1 - CONFIDENCE) / 2:.1%}"
    )
    print(
        f"calibration bounds ({bound}, +1 point of simulation noise): {'met' if ok else 'EXCEEDED'}"
    )
    return ok


def baseline_size() -> None:
    """Bytes of a baseline file holding 14,042 MMLU per-item outcomes in 57 subjects."""
    rng = random.Random(7)
    sizes = [14042 // 57 + (1 if i < 14042 % 57 else 0) for i in range(57)]
    scores, clusters = {}, {}
    for s, size in enumerate(sizes):
        subject = f"subject_{s:02d}_{'x' * (s % 20)}"  # MMLU's names are 5-35 characters
        for i in range(size):
            scores[f"{subject}/{i}"] = float(rng.random() < 0.6)
            clusters[f"{subject}/{i}"] = subject
    outcomes = ItemOutcomes(scores, clusters)
    record = GateRecord(
        test="t::test_mmlu",
        benchmark="mmlu",
        spec={"name": "mmlu"},
        verdict=Outcome.PASS,
        action=Action.PASS,
        message="",
        metric="accuracy",
        score=outcomes.mean,
        metrics={"accuracy": outcomes.mean},
        stderr={"accuracy": 0.004},
        n=outcomes.n,
        evaluation_id="eval_x",
        primary_metric="accuracy",
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "baseline.json"
        baseline = Baseline.load(path)
        baseline.bless([record], {"job_id": "job"}, {"mmlu": outcomes})
        baseline.save()
        size = path.stat().st_size
        lines = len(path.read_text().splitlines())
    print(
        f"baseline file with {outcomes.n:,} MMLU per-item outcomes (57 subjects): "
        f"{size / 1024:.1f} KiB, {lines} lines (one line per subject)"
    )


def speed() -> None:
    """Time of one paired judgement at 14,042 items, and of its two Holm p-values."""
    rng = random.Random(3)
    base, cand = simulate(rng, 14042, -0.005, 0.15)
    gate = make_gate("mmlu", max_drop=0.01, confidence=CONFIDENCE)
    measured = Measured("accuracy", cand.mean, cand.n, "e", proportion=True, items=cand)
    reference = Reference(base.mean, "simulated", base.n, None, base)
    rounds = 20
    started = time.perf_counter()
    for _ in range(rounds):
        assessed = assess(gate, measured, reference)
        assessed.verdict()
    judged = (time.perf_counter() - started) / rounds
    started = time.perf_counter()
    for _ in range(rounds):
        assessed.checks[0].pvalues()
    pvalues = (time.perf_counter() - started) / rounds
    print(
        f"one paired judgement at n=14,042: {judged * 1000:.1f} ms; "
        f"its two Holm p-values: {pvalues * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--discordance", type=float, default=0.15)
    parser.add_argument("--quick", action="store_true", help="n = 164 and 1,000 only")
    args = parser.parse_args()
    sizes = SIZES[:2] if args.quick else SIZES
    ok = calibrate(args.sessions, args.discordance, sizes)
    baseline_size()
    speed()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
