"""Normalise N evaluation records into a long DataFrame; print records/s beside pandas.json_normalize.

Goal: scaimind_nb's full tolerant parse plus results_frame runs at least half as fast as
``pandas.json_normalize`` flattening the same payloads. Run: ``python benchmarks/normalise_frames.py [N]``.
"""

from __future__ import annotations

import random
import sys
import time


def make_payloads(n: int, seed: int = 0) -> list[dict]:
    """Realistic records: 3 benchmarks with 3 metrics each, int64 strings, envelope, timestamps."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        results = []
        for b in ("mmlu", "hellaswag", "arc_challenge"):
            acc = rng.random()
            results.append(
                {
                    "benchmark": b,
                    "score": acc,
                    "metrics": {"accuracy": acc, "acc_norm": rng.random(), "f1": rng.random()},
                    "stderr": {"accuracy": rng.random() / 50},
                    "num_samples": str(rng.randint(100, 1000)),
                    "extra": {},
                }
            )
        out.append(
            {
                "data": {
                    "evaluation_id": f"eval_{i:08d}",
                    "job_id": f"job_{i // 10:06d}",
                    "model_uri": f"scaidrive://org/models/m{i // 10}",
                    "checkpoint_id": f"step-{i % 10}",
                    "status": "COMPLETED",
                    "benchmarks": [
                        {"name": r["benchmark"], "num_samples": r["num_samples"]} for r in results
                    ],
                    "results": results,
                    "created_at": "2026-11-26T10:00:00.123Z",
                    "updated_at": "2026-11-26T10:05:00Z",
                }
            }
        )
    return out


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    import pandas as pd

    from scaimind_nb import parse_evaluation, results_frame

    payloads = make_payloads(n)
    t0 = time.perf_counter()
    base = pd.json_normalize(
        [p["data"] for p in payloads],
        record_path="results",
        meta=["evaluation_id", "job_id", "model_uri", "checkpoint_id", "status", "created_at"],
    )
    t_base = time.perf_counter() - t0

    t0 = time.perf_counter()
    evs = [parse_evaluation(p) for p in payloads]
    t_parse = time.perf_counter() - t0
    df = results_frame(evs)
    t_ours = time.perf_counter() - t0

    print(f"records: {n:,} (3 benchmarks x 3 metrics each)")
    print(
        f"pandas.json_normalize : {n / t_base:12,.0f} records/s  ({t_base:.2f} s, {len(base):,} rows, flat only)"
    )
    print(
        f"scaimind_nb           : {n / t_ours:12,.0f} records/s  ({t_ours:.2f} s, {len(df):,} rows; "
        f"parse {t_parse:.2f} s + frame {t_ours - t_parse:.2f} s)"
    )
    ratio = t_base / t_ours
    print(
        f"ratio (ours/baseline rate): {ratio:.2f}  goal >= 0.50  {'OK' if ratio >= 0.5 else 'BELOW GOAL'}"
    )


if __name__ == "__main__":
    main()
