"""The seam between benchmark runners and model backends.

Every backend (python, openai, hf, llamacpp) yields an object satisfying `ModelBackend`.
Three capabilities are optional and tested by attribute: `loglikelihood`
(`supports_loglikelihood`), `count_tokens` (`token_counts`) and `chat` (`supports_chat`): a chat
model answers whole conversations in its own chat format (an hf tokenizer with a chat template,
an openai backend on `/chat/completions`), so runners such as humaneval can ask it for whole
functions instead of raw continuations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class ModelBackend(Protocol):
    """What a runner may ask of a model."""

    def generate(
        self,
        prompts: list[str],
        *,
        max_new_tokens: int,
        temperature: float,
        stop: list[str] | None,
    ) -> list[str]:
        """One completion per prompt, cut at the first stop sequence (which is not included)."""
        ...


@runtime_checkable
class LoglikelihoodBackend(ModelBackend, Protocol):
    """A backend that can also score continuations."""

    def loglikelihood(self, pairs: list[tuple[str, str]]) -> list[float]:
        """Sum of token log-probabilities of each continuation given its context."""
        ...


@runtime_checkable
class ChatBackend(ModelBackend, Protocol):
    """A backend that answers conversations through the model's chat template."""

    def chat(
        self,
        conversations: list[list[dict[str, str]]],
        *,
        max_new_tokens: int,
        temperature: float,
        stop: list[str] | None,
    ) -> list[str]:
        """One assistant reply per conversation of `{"role", "content"}` messages, cut at stop."""
        ...


def supports_chat(model: object) -> bool:
    """True when the model is a chat model (answers conversations with `chat`)."""
    return callable(getattr(model, "chat", None))


def supports_loglikelihood(model: object) -> bool:
    """True when the model can score continuations (MC by log-likelihood)."""
    return callable(getattr(model, "loglikelihood", None))


def token_counts(model: object, texts: list[str]) -> list[int]:
    """Each text's length in the model's tokens, or in characters for a model without a tokenizer.

    Runners sort work by it so that batches pad little. A backend offers its tokenizer's counts
    through an optional `count_tokens(texts) -> list[int]` (the hf backend does).
    """
    count = getattr(model, "count_tokens", None)
    if callable(count):
        counts = [int(n) for n in count(texts)]
        if len(counts) == len(texts):
            return counts
    return [len(t) for t in texts]


@dataclass(frozen=True)
class ModelManifest:
    """The parsed `scaimind-model.json` of a model folder."""

    backend: str
    folder: str
    config: dict[str, Any] = field(default_factory=dict)
