"""The humaneval runner: real HumanEval data, scripted completions, sandboxed verdicts."""

from __future__ import annotations

import json
import math
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from scaimind_local._benchmarks.base import (
    BenchmarkCancelled,
    BenchmarkSpec,
    InvalidBenchmark,
    RunContext,
)
from scaimind_local._benchmarks.humaneval import RUNNER, default_dataset, pass_at_k, read_problems

from ._helpers import Progress, make_context

pytestmark = pytest.mark.isolation

PROBLEMS = read_problems(default_dataset())
CANONICAL = {p["prompt"]: p["canonical_solution"] for p in PROBLEMS}


class Answers:
    """A model answering each prompt from a table (canonical solution by default)."""

    def __init__(self, overrides: dict[str, str] | None = None, default: str | None = None):
        self.overrides = overrides or {}
        self.default = default
        self.prompts: list[str] = []

    def generate(
        self, prompts: list[str], *, max_new_tokens: int, temperature: float, stop: list[str] | None
    ) -> list[str]:
        self.prompts += prompts
        return [
            self.overrides.get(p, self.default if self.default is not None else CANONICAL[p])
            for p in prompts
        ]


def test_canonical_solutions_pass_all_164(ctx: RunContext) -> None:
    result = RUNNER.run(BenchmarkSpec("humaneval"), Answers(), ctx)
    assert len(PROBLEMS) == 164
    assert result.metrics["pass@1"] == 1.0
    assert result.num_samples == 164 and "count" not in result.metrics
    assert result.primary_metric == "pass@1"
    assert {s["verdict"] for s in result.samples} == {"passed"}
    assert result.extra["counts"] == {"passed": 164, "failed": 0, "timed_out": 0}


def test_empty_answers_pass_none(ctx: RunContext) -> None:
    result = RUNNER.run(BenchmarkSpec("humaneval", num_samples=20), Answers(default=""), ctx)
    assert result.metrics["pass@1"] == 0.0 and result.num_samples == 20
    assert all(s["verdict"] == "failed" and s["error"] for s in result.samples)


@pytest.fixture
def four_problems(tmp_path: Path) -> Path:
    path = tmp_path / "four.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS[:4]))
    return path


HOSTILE = {
    "infinite-loop": "    while True:\n        pass\n",
    "fork-bomb": "    import os\n    while True:\n        os.fork()\n",
    "memory-bomb": "    x = []\n    while True:\n        x.append(' ' * 2**24)\n",
    "rm-rf-work-dir": "    import os\n    os.system('rm -rf .')\n    return []\n",
    "sys-exit-0": "    import sys\n    sys.exit(0)\n",
    "os-exit-0": "    import os\n    os._exit(0)\n",
    "kill-parent": "    import os, signal\n    os.kill(os.getppid(), signal.SIGKILL)\n",
    "forge-success-line": "    import os\n    print('passed')\n    os._exit(0)\n",
    "walk-stack": "    import sys\n    f = sys._getframe()\n    while f.f_back:\n        f = f.f_back\n        f.f_locals.clear()\n    raise SystemExit(0)\n",
}


@pytest.mark.parametrize("completion", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_completion_fails_only_its_problem(four_problems: Path, completion: str) -> None:
    hostile_prompt = PROBLEMS[0]["prompt"]
    spec = BenchmarkSpec("humaneval", dataset=str(four_problems), parameters={"timeout": "1.5"})
    result = RUNNER.run(spec, Answers({hostile_prompt: completion}), make_context())
    verdicts = {s["id"]: s["verdict"] for s in result.samples}
    assert verdicts.pop(PROBLEMS[0]["task_id"]) in ("failed", "timed_out")
    assert set(verdicts.values()) == {"passed"}
    assert result.metrics["pass@1"] == 0.75


def test_per_problem_records_hold_verdict_error_and_completion(four_problems: Path) -> None:
    wrong = "    return True\n"
    spec = BenchmarkSpec("humaneval", dataset=str(four_problems))
    result = RUNNER.run(spec, Answers({PROBLEMS[1]["prompt"]: wrong}), make_context())
    record = next(s for s in result.samples if s["id"] == PROBLEMS[1]["task_id"])
    assert record["verdict"] == "failed" and record["correct"] is False
    assert record["error"] and record["completion"] == wrong
    assert result.extra["per_problem"][PROBLEMS[1]["task_id"]] == 0


def test_completion_is_cut_at_stop_sequences(four_problems: Path) -> None:
    canonical = PROBLEMS[2]["canonical_solution"]
    text = canonical + "\ndef helper():\n    raise SystemExit(1)\n"
    spec = BenchmarkSpec("humaneval", dataset=str(four_problems))
    model = Answers({PROBLEMS[2]["prompt"]: text})
    result = RUNNER.run(spec, model, make_context())
    assert result.metrics["pass@1"] == 1.0
    assert all(p in CANONICAL for p in model.prompts)  # prompts are sent unstripped


def brute_pass_at_k(n: int, c: int, k: int) -> float:
    samples = [True] * c + [False] * (n - c)
    subsets = list(combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize(("n", "c", "k"), [(5, 0, 1), (5, 2, 1), (5, 2, 2), (5, 2, 3), (6, 5, 3)])
def test_pass_at_k_is_the_unbiased_estimator(n: int, c: int, k: int) -> None:
    assert math.isclose(pass_at_k(n, c, k), brute_pass_at_k(n, c, k))


class Alternating:
    """Right on every other call for each prompt: c = ceil(n / 2) of n samples."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def generate(self, prompts: list[str], **kwargs: Any) -> list[str]:
        out = []
        for p in prompts:
            count = self.seen.get(p, 0)
            self.seen[p] = count + 1
            out.append(CANONICAL[p] if count % 2 == 0 else "    return None\n")
        return out


def test_pass_at_k_with_several_samples(four_problems: Path) -> None:
    spec = BenchmarkSpec(
        "humaneval",
        dataset=str(four_problems),
        parameters={"n": "5", "temperature": "0.8", "k": "1,2,10", "batch_size": "3"},
    )
    result = RUNNER.run(spec, Alternating(), make_context())
    assert len(result.samples) == 20 and result.num_samples == 4
    assert math.isclose(result.metrics["pass@1"], 3 / 5)
    assert math.isclose(result.metrics["pass@2"], brute_pass_at_k(5, 3, 2))
    assert "pass@10" not in result.metrics  # k > n is not reported


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"n": "3"}, "temperature > 0"),
        ({"k": "one"}, "k='one'"),
        ({"timeout": "soon"}, "timeout='soon' must be a number"),
        ({"max_new_tokens": "-4"}, "at least 1"),
    ],
)
def test_bad_parameters_are_refused(
    ctx: RunContext, parameters: dict[str, str], message: str
) -> None:
    with pytest.raises(InvalidBenchmark, match=message):
        RUNNER.validate(BenchmarkSpec("humaneval", parameters=parameters), ctx)


def test_a_dataset_in_the_wrong_format_is_refused(tmp_path: Path, ctx: RunContext) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"task_id": "x", "prompt": "def f():\n"}) + "\n")
    with pytest.raises(InvalidBenchmark, match="lacks test, entry_point"):
        RUNNER.validate(BenchmarkSpec("humaneval", dataset=str(bad)), ctx)


def test_num_samples_picks_a_reproducible_subset() -> None:
    def ids(seed: str) -> list[str]:
        spec = BenchmarkSpec("humaneval", num_samples=5, parameters={"seed": seed})
        return RUNNER.run(spec, Answers(), make_context()).extra["selection"]["ids"]

    assert ids("1") == ids("1")
    assert ids("1") != ids("2")
    assert len(ids("3")) == 5


def test_progress_is_reported_per_sample_and_cancel_stops(four_problems: Path) -> None:
    progress = Progress()
    spec = BenchmarkSpec("humaneval", dataset=str(four_problems), parameters={"batch_size": "1"})
    RUNNER.run(spec, Answers(), make_context(progress))
    assert progress.reports[-1] == (4, 4)
    done = [d for d, _ in progress.reports]
    assert done == sorted(done) and len(done) >= 4
    cancelling = Progress(cancel_at=1)
    with pytest.raises(BenchmarkCancelled):
        RUNNER.run(spec, Answers(), make_context(cancelling))
