"""The llamacpp backend's arithmetic, against a stand-in `llama_cpp` module.

llama-cpp-python is never a dev dependency (a 15-minute compile), so this checks what is ours:
the context/continuation split and that token t is scored by the logits of position t - 1.
"""

from __future__ import annotations

import json
import math
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from scaimind_local._backends.base import ModelManifest

VOCAB = 300


class FakeLlama:
    """Bytes are tokens (offset by 1; BOS is 0); logits of position i favour token (i * 7) % V."""

    instances: list[FakeLlama] = []

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.scores: list[list[float]] = []
        FakeLlama.instances.append(self)

    def tokenize(self, text: bytes, add_bos: bool = True) -> list[int]:
        return ([0] if add_bos else []) + [b + 1 for b in text]

    def reset(self) -> None:
        self.scores = []

    def eval(self, tokens: list[int]) -> None:
        self.scores = [
            [5.0 if v == (i * 7) % VOCAB else 0.0 for v in range(VOCAB)] for i in range(len(tokens))
        ]

    def set_seed(self, seed: int) -> None:
        self.seed = seed

    def create_completion(self, prompt: str, **kwargs: Any) -> dict[str, Any]:
        return {"choices": [{"text": f"<{prompt}|{kwargs['temperature']}|{kwargs['stop']}>"}]}


@pytest.fixture
def llamacpp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.setitem(sys.modules, "llama_cpp", types.SimpleNamespace(Llama=FakeLlama))
    from scaimind_local._backends import llamacpp as module

    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    (tmp_path / "scaimind-model.json").write_text(
        json.dumps({"backend": "llamacpp", "path": "m.gguf"})
    )
    manifest = ModelManifest(
        "llamacpp", str(tmp_path), {"backend": "llamacpp", "path": "m.gguf", "threads": 2}
    )
    return module.load(manifest, {})


def log_softmax_at(position: int, token: int) -> float:
    other = math.exp(0.0) * (VOCAB - 1)
    hot = math.exp(5.0)
    value = 5.0 if token == (position * 7) % VOCAB else 0.0
    return value - math.log(hot + other)


def test_continuation_tokens_are_scored_by_the_previous_positions_logits(llamacpp: Any) -> None:
    context, continuation = "ab", "cd"
    tokens = [0, ord("a") + 1, ord("b") + 1, ord("c") + 1, ord("d") + 1]
    expected = log_softmax_at(2, tokens[3]) + log_softmax_at(3, tokens[4])
    (score,) = llamacpp.loglikelihood([(context, continuation)])
    assert score == pytest.approx(expected)


def test_the_model_is_opened_with_raw_logits_and_all_threads(llamacpp: Any) -> None:
    kwargs = FakeLlama.instances[-1].kwargs
    assert kwargs["logits_all"] is True and kwargs["n_threads"] == 2
    assert kwargs["model_path"].endswith("m.gguf")


def test_generation_passes_greedy_settings_and_stops(llamacpp: Any) -> None:
    out = llamacpp.generate(["hi"], max_new_tokens=4, temperature=0.0, stop=["\n", ""])
    assert out == ["<hi|0.0|['\\n']>"]
