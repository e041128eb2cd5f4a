"""custom-*: answers are generated in batches of similar prompt length, scored in file order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scaimind_local._benchmarks.base import BenchmarkSpec
from scaimind_local._benchmarks.custom import RUNNER

from ._helpers import Progress, make_context

PROMPTS = [
    "a?",
    "a much longer question?",
    "mid length?",
    "b?",
    "the longest question of them all?",
]


class Recorder:
    """Answers each prompt with its upper-case echo and records every generate call's prompts."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def generate(
        self, prompts: list[str], *, max_new_tokens: int, temperature: float, stop: Any
    ) -> list[str]:
        self.calls.append(list(prompts))
        return [p.upper() for p in prompts]


def test_batches_are_sorted_by_length_and_results_keep_file_order(tmp_path: Path) -> None:
    data = tmp_path / "qa.jsonl"
    rows = [
        {"prompt": p, "reference": p.upper() if i != 3 else "no"} for i, p in enumerate(PROMPTS)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = BenchmarkSpec("custom-qa", str(data), None, {"batch_size": "2"})
    model, progress = Recorder(), Progress()
    result = RUNNER.run(spec, model, make_context(progress))  # type: ignore[arg-type]
    # longest first, two at a time (characters: the recorder has no tokenizer)
    assert model.calls == [
        ["the longest question of them all?", "a much longer question?"],
        ["mid length?", "a?"],
        ["b?"],
    ]
    assert [s["prompt"] for s in result.samples] == PROMPTS  # file order, whatever the batches
    assert [s["correct"] for s in result.samples] == [True, True, True, False, True]
    assert result.metrics == {"exact_match": 0.8}
    assert progress.reports == [(0, 5), (2, 5), (4, 5), (5, 5)]  # progress after each batch
