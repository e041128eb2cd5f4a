"""Print how long ``import scaimind_nb`` takes and which heavy modules it loads (goal: none).

Each measurement runs in a fresh interpreter. Run: ``python benchmarks/import_time.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pandas", "numpy", "httpx", "httpcore", "ipywidgets", "IPython", "torch", "transformers")

PROBE = """
import json, sys, time
t0 = time.perf_counter()
{stmt}
dt = time.perf_counter() - t0
print(json.dumps({{"seconds": dt, "heavy": sorted(m for m in {heavy!r} if m in sys.modules)}}))
"""


def measure(stmt: str, repeat: int = 5) -> dict:
    """Best-of-``repeat`` time of ``stmt`` in a fresh interpreter, plus the heavy modules it loaded."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(stmt=stmt, heavy=HEAVY)],
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(out.stdout))
    best = min(runs, key=lambda r: r["seconds"])
    return best


def main() -> None:
    for label, stmt in (
        ("baseline: import json", "import json"),
        ("import scaimind_nb", "import scaimind_nb"),
        ("scaimind_nb.Client", "import scaimind_nb; scaimind_nb.Client"),
        ("scaimind_nb.results_frame", "import scaimind_nb; scaimind_nb.results_frame"),
    ):
        r = measure(stmt)
        heavy = ", ".join(r["heavy"]) or "none"
        print(f"{label:28s} {r['seconds'] * 1000:8.1f} ms   heavy modules: {heavy}")


if __name__ == "__main__":
    main()
