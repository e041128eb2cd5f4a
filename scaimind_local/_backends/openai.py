"""The `openai` backend: any OpenAI-compatible server (vLLM, llama.cpp server, Ollama, TGI).

Manifest: `{"backend": "openai", "base_url": "http://host:8000/v1", "model": "name",
"endpoint": "completions" | "chat", "api_key_env": "VAR", "timeout": 60, "max_retries": 2}`.
On the `chat` endpoint the model is a chat model: it also answers whole conversations (`chat`).
Log-likelihood uses `/completions` with `echo` + `logprobs`; it is probed once at load and only
offered when the server really returns prompt log-probabilities (vLLM does; chat APIs and
llama-server do not).
"""

from __future__ import annotations

import os
import time
from typing import Any

from .._benchmarks._shared import cut_at_stop
from .._benchmarks.base import InvalidBenchmark
from .base import ModelManifest

_PROBE = ("The capital of France is", " Paris")


def check(manifest: ModelManifest, settings: dict[str, Any]) -> None:
    """The manifest names a base URL and a model; the endpoint kind is known."""
    config = manifest.config
    for key in ("base_url", "model"):
        if not isinstance(config.get(key), str) or not config[key]:
            raise InvalidBenchmark(f'{manifest.folder}: the openai backend needs "{key}"')
    if config.get("endpoint", "completions") not in ("completions", "chat"):
        raise InvalidBenchmark(f'{manifest.folder}: "endpoint" must be "completions" or "chat"')


class OpenAIModel:
    """Generation through /completions or /chat/completions; log-likelihood when probed OK."""

    def __init__(self, config: dict[str, Any]) -> None:
        import httpx

        headers = {}
        key_env = config.get("api_key_env")
        if key_env and os.environ.get(key_env):
            headers["Authorization"] = f"Bearer {os.environ[key_env]}"
        self.model = config["model"]
        self._chat_endpoint = config.get("endpoint", "completions") == "chat"
        self.max_retries = int(config.get("max_retries", 2))
        self._http = httpx.Client(
            base_url=config["base_url"].rstrip("/") + "/",
            headers=headers,
            timeout=float(config.get("timeout", 60)),
        )
        if self._chat_endpoint:
            self.chat = self._chat
        elif config.get("loglikelihood", True) and self._probe():
            self.loglikelihood = self._loglikelihood

    def __repr__(self) -> str:
        return f"OpenAIModel(base_url={str(self._http.base_url)!r}, model={self.model!r})"

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        for attempt in range(self.max_retries + 1):
            try:
                resp = self._http.post(path, json={"model": self.model, **body})
                if resp.status_code < 500 or attempt == self.max_retries:
                    resp.raise_for_status()
                    result: dict[str, Any] = resp.json()
                    return result
            except httpx.TransportError:
                if attempt == self.max_retries:
                    raise
            time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    @staticmethod
    def _params(max_new_tokens: int, temperature: float, stop: list[str] | None) -> dict[str, Any]:
        params: dict[str, Any] = {"max_tokens": max_new_tokens, "temperature": temperature}
        if stop:
            params["stop"] = stop
        return params

    def generate(
        self, prompts: list[str], *, max_new_tokens: int, temperature: float, stop: list[str] | None
    ) -> list[str]:
        """Continuations from /completions; on the chat endpoint each prompt is one user turn."""
        if self._chat_endpoint:
            conversations = [[{"role": "user", "content": p}] for p in prompts]
            return self._chat(
                conversations, max_new_tokens=max_new_tokens, temperature=temperature, stop=stop
            )
        params = self._params(max_new_tokens, temperature, stop)
        out = []
        for prompt in prompts:
            text = self._post("completions", {"prompt": prompt, **params})["choices"][0]["text"]
            out.append(cut_at_stop(text, stop or ()))
        return out

    def _chat(
        self,
        conversations: list[list[dict[str, str]]],
        *,
        max_new_tokens: int,
        temperature: float,
        stop: list[str] | None,
    ) -> list[str]:
        """One /chat/completions reply per conversation (the server applies the template)."""
        params = self._params(max_new_tokens, temperature, stop)
        out = []
        for messages in conversations:
            choice = self._post("chat/completions", {"messages": messages, **params})
            out.append(cut_at_stop(choice["choices"][0]["message"]["content"] or "", stop or ()))
        return out

    def _score(self, context: str, continuation: str) -> float | None:
        """Sum of the continuation's prompt token log-probs, or None if the server gave none."""
        body = {"prompt": context + continuation, "max_tokens": 1, "temperature": 0.0}
        choice = self._post("completions", {**body, "echo": True, "logprobs": 1})["choices"][0]
        logprobs = choice.get("logprobs") or {}
        offsets, values = logprobs.get("text_offset"), logprobs.get("token_logprobs")
        if not offsets or not values:
            return None
        end = len(context) + len(continuation)
        picked = [v for o, v in zip(offsets, values, strict=False) if len(context) <= o < end]
        if not picked or any(v is None for v in picked):
            return None
        return float(sum(picked))

    def _probe(self) -> bool:
        try:
            return self._score(*_PROBE) is not None
        except Exception:
            return False

    def _loglikelihood(self, pairs: list[tuple[str, str]]) -> list[float]:
        scores = []
        for context, continuation in pairs:
            value = self._score(context, continuation)
            if value is None:
                raise RuntimeError("the server stopped returning prompt log-probabilities")
            scores.append(value)
        return scores


def load(manifest: ModelManifest, settings: dict[str, Any]) -> OpenAIModel:
    """Connect (lazily) and probe log-likelihood support once."""
    check(manifest, settings)
    return OpenAIModel(manifest.config)
