"""The `llamacpp` backend: a GGUF model through llama-cpp-python, when the operator installed it.

Manifest: the same keys as `hf` for the file (`path` to a .gguf, or `path` + `gguf_file`, or
`gguf_package`), plus `n_ctx` (default 4096), `threads` (default: all cores) and `seed`.
Log-likelihoods come from the raw logits (`logits_all=True`), never from the echoed
log-probs of `create_completion`, which are shifted by one position (llama-cpp-python #1983).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from .._benchmarks.base import InvalidBenchmark
from .._digest import relative_label
from .base import ModelManifest
from .hf import cache_key as cache_key, check as _check_files, model_location


def check(manifest: ModelManifest, settings: dict[str, Any]) -> None:
    """The manifest must name an existing .gguf file."""
    _check_files(manifest, settings)
    _, gguf = model_location(manifest)
    if not gguf:
        raise InvalidBenchmark(f"{manifest.folder}: the llamacpp backend needs a .gguf file")


class LlamaCppModel:
    """A llama.cpp model answering `generate` and `loglikelihood`."""

    def __init__(self, model_path: str, config: dict[str, Any]) -> None:
        from llama_cpp import Llama

        self.name = os.path.basename(model_path)
        self.seed = int(config.get("seed", 0))
        self.llm = Llama(
            model_path=model_path,
            n_ctx=int(config.get("n_ctx", 4096)),
            n_threads=int(config.get("threads") or len(os.sched_getaffinity(0))),
            logits_all=True,
            seed=self.seed,
            verbose=False,
        )
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<LlamaCppModel {self.name}>"

    def generate(
        self, prompts: list[str], *, max_new_tokens: int, temperature: float, stop: list[str] | None
    ) -> list[str]:
        """One completion per prompt; greedy at temperature 0."""
        out = []
        with self._lock:
            for prompt in prompts:
                self.llm.set_seed(self.seed)
                answer: Any = self.llm.create_completion(
                    prompt,
                    max_tokens=max_new_tokens,
                    temperature=temperature,
                    top_k=1 if temperature == 0 else 0,
                    top_p=1.0,
                    stop=[s for s in stop or () if s],
                )
                out.append(str(answer["choices"][0]["text"]))
        return out

    def _split(self, context: str, continuation: str) -> tuple[list[int], int]:
        """Tokens of context+continuation and the index of the first continuation token."""
        full = list(self.llm.tokenize((context + continuation).encode("utf-8"), add_bos=True))
        ctx = list(self.llm.tokenize(context.encode("utf-8"), add_bos=True))
        first = 0
        while first < min(len(full), len(ctx)) and full[first] == ctx[first]:
            first += 1
        first = max(1, min(first, len(full) - 1))
        return full, first

    def loglikelihood(self, pairs: list[tuple[str, str]]) -> list[float]:
        """Sum of continuation token log-probs computed from the raw logits."""
        import numpy as np

        scores = []
        with self._lock:
            for context, continuation in pairs:
                tokens, first = self._split(context, continuation)
                self.llm.reset()
                self.llm.eval(tokens)
                logits = np.asarray(self.llm.scores[: len(tokens)], dtype=np.float64)
                rows = logits[first - 1 : len(tokens) - 1]
                shifted = rows - rows.max(axis=1, keepdims=True)
                logprobs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
                targets = np.asarray(tokens[first:])
                scores.append(float(logprobs[np.arange(len(targets)), targets].sum()))
        return scores


def load(manifest: ModelManifest, settings: dict[str, Any]) -> LlamaCppModel:
    """Open the GGUF the manifest names (`ModelCache` keeps it for later evaluations)."""
    check(manifest, settings)
    location, gguf = model_location(manifest)
    return LlamaCppModel(str(location / gguf) if gguf else str(location), manifest.config)


def artefacts(manifest: ModelManifest) -> list[tuple[str, Path]]:
    """The GGUF file the model is loaded from (for the model digest)."""
    location, gguf = model_location(manifest)
    file = location / gguf if gguf else location
    return [(relative_label(file, Path(manifest.folder)), file)]
