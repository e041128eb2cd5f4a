"""The seam between benchmark runners and model backends.

Every backend (python, openai, hf, llamacpp) yields an object satisfying `ModelBackend`.
`loglikelihood` is optional: runners test for it with `supports_loglikelihood`.
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


def supports_loglikelihood(model: object) -> bool:
    """True when the model can score continuations (MC by log-likelihood)."""
    return callable(getattr(model, "loglikelihood", None))


@dataclass(frozen=True)
class ModelManifest:
    """The parsed `scaimind-model.json` of a model folder."""

    backend: str
    folder: str
    config: dict[str, Any] = field(default_factory=dict)
