"""Notebook-layer overhead: `%load_ext scaimind_nb` time and IOPub traffic of a live evaluation.

Prints, beside a baseline measured in the same run:
1. time from `%load_ext scaimind_nb` to ready (magics registered), with pandas already imported
   (goal: < 0.3 s); baseline: `%load_ext autoreload`.
2. IOPub messages sent while a real kernel watches an evaluation of `--seconds` (default 120) on the
   embedded coordinator, per progress mode (goal: <= 5 display updates/s); baseline: a
   `tqdm.notebook` bar over the same duration.

Usage: python benchmarks/notebook_overhead.py [--seconds 120] [--modes widget,html]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from typing import Any

LOAD_EXT = r"""
import time
import pandas  # excluded from the measurement
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config
config = Config(); config.HistoryManager.hist_file = ":memory:"
ip = InteractiveShell.instance(config=config)
t0 = time.perf_counter()
ip.run_line_magic("load_ext", "{ext}")
print(time.perf_counter() - t0)
"""

WATCH = r"""
import os
from scaimind_local import LocalCoordinator
from scaimind_local.testing import write_custom_dataset, write_model
coordinator = LocalCoordinator().start()
os.environ.update(coordinator.env())
n = {samples}
rows = [{{"prompt": f"q{{i}}", "reference": "x"}} for i in range(n)]
dataset = write_custom_dataset(coordinator.drive_root, "org/eval/bench.jsonl", rows)
uri = write_model(coordinator.drive_root, "org/models/bench", options={{"default": "x", "delay": {delay}}})
coordinator.register_job("job_bench", uri)
%load_ext scaimind_nb
%config ScaimindMagics.progress = "{mode}"
"""

RUN = """import scaimind_nb
run = scaimind_nb.evaluate("job_bench", uri, [{"name": "custom-bench", "dataset": dataset}])"""

TQDM = """import time
from tqdm.notebook import tqdm
for _ in tqdm(range({samples})):
    time.sleep({delay})"""


def load_ext_seconds(ext: str, repeats: int = 5) -> float:
    """Best of `repeats` fresh interpreters: %load_ext time with pandas pre-imported."""
    times = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", LOAD_EXT.format(ext=ext)],
            capture_output=True,
            text=True,
            check=True,
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return min(times)


def iopub_counts(setup: str, code: str) -> tuple[Counter[str], float]:
    """Run `setup`, then count IOPub messages (by type) caused by `code` and its duration."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        kc.execute_interactive(setup, timeout=120, output_hook=lambda msg: None)
        counts: Counter[str] = Counter()

        def hook(msg: dict[str, Any]) -> None:
            counts[msg["msg_type"]] += 1

        start = time.monotonic()
        reply = kc.execute_interactive(code, timeout=3600, output_hook=hook)
        elapsed = time.monotonic() - start
        if reply["content"]["status"] != "ok":
            raise RuntimeError(json.dumps(reply["content"])[:500])
        counts.pop("status", None)
        counts.pop("execute_input", None)
        return counts, elapsed
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="evaluation length")
    parser.add_argument("--modes", default="widget,html", help="progress modes to measure")
    args = parser.parse_args()

    ours = load_ext_seconds("scaimind_nb")
    base = load_ext_seconds("autoreload")
    print("%load_ext to ready (pandas pre-imported, best of 5)")
    print(f"  scaimind_nb : {ours * 1000:7.1f} ms   (goal < 300 ms)")
    print(f"  autoreload  : {base * 1000:7.1f} ms   (baseline)")

    samples = max(10, int(args.seconds / 0.5))
    delay = args.seconds / samples
    print(f"\nIOPub messages while watching a {args.seconds:.0f} s evaluation ({samples} samples)")
    rows = []
    for mode in args.modes.split(","):
        setup = WATCH.format(samples=samples, delay=delay, mode=mode)
        counts, elapsed = iopub_counts(setup, RUN)
        updates = counts["comm_msg"] if mode == "widget" else counts["update_display_data"]
        rows.append((f"scaimind_nb {mode}", counts, elapsed, updates))
    counts, elapsed = iopub_counts("", TQDM.format(samples=samples, delay=delay))
    rows.append(("tqdm.notebook (baseline)", counts, elapsed, counts["comm_msg"]))
    for name, counts, elapsed, updates in rows:
        total = sum(counts.values())
        print(
            f"  {name:<26} {elapsed:6.1f} s  {total:5d} messages ({total / elapsed:5.2f}/s)  "
            f"display updates {updates:5d} ({updates / elapsed:5.2f}/s, goal <= 5/s)  {dict(counts)}"
        )


if __name__ == "__main__":
    main()
