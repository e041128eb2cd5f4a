"""`mmlu`: four-choice multiple choice, by log-likelihood where the model can, else generative.

Data comes from the operator: the original CSV layout (`data/test/<subject>_test.csv`, few-shot
from `data/dev/`), Hugging Face `cais/mmlu` parquet files, or JSONL `{question, choices,
answer, subject[, split]}`. Where: the benchmark's `dataset`, else the server setting
`mmlu_data`, else the environment variable `SCAIMIND_MMLU_DATA`.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from .._backends.base import ModelBackend, supports_loglikelihood
from .._drive import open_regular
from .._json import load_json
from ._shared import cut_at_stop, ids_digest, int_param, mean, mean_stderr
from .base import BenchmarkSpec, InvalidBenchmark, RunContext, RunnerResult

LETTERS = "ABCD"
VERSION = 1
ENV = "SCAIMIND_MMLU_DATA"
HOW_TO = (
    "mmlu needs data: pass a dataset (a folder in the MMLU CSV layout data/test/<subject>_test.csv, "
    "cais/mmlu parquet files, or a JSONL file of {question, choices, answer, subject}), or start "
    f"the server with the mmlu_data setting or the {ENV} environment variable"
)
_ANSWER_LINE = re.compile(r"(?i:answer)\s*[:\uff1a]\s*\(?([A-D])\)?(?![A-Za-z])")
_LEADING_LETTER = re.compile(r"^\(?([A-D])\)?(?:[.:)]|$)")
_THINK = re.compile(r"<think>.*?</think>", re.S)
_GENERATIVE_STOP = ["\n\n", "\nQuestion", "<|"]

Item = dict[str, Any]


def _item(subject: str, index: int, question: str, choices: list[str], answer: Any) -> Item:
    if len(choices) != 4:
        raise InvalidBenchmark(
            f"mmlu: {subject} question {index} has {len(choices)} choices; exactly 4 are needed"
        )
    if isinstance(answer, str) and answer.strip().upper() in LETTERS:
        answer = LETTERS.index(answer.strip().upper())
    if isinstance(answer, str) and answer.strip().isdigit():
        answer = int(answer.strip())
    if not isinstance(answer, int) or not 0 <= answer < 4:
        raise InvalidBenchmark(
            f"mmlu: {subject} question {index} has answer {answer!r}; use A-D or 0-3"
        )
    return {
        "id": f"{subject}/{index}",
        "subject": subject,
        "question": str(question),
        "choices": [str(c) for c in choices],
        "answer": answer,
    }


def _read_csv_dir(folder: Path, split: str) -> list[Item]:
    items = []
    for file in sorted(folder.glob(f"*_{split}.csv")):
        subject = file.name[: -len(f"_{split}.csv")]
        with open_regular(file, str(file), encoding="utf-8", newline="") as fh:
            for index, row in enumerate(csv.reader(fh)):
                if len(row) != 6:
                    raise InvalidBenchmark(
                        f"mmlu: {file} row {index + 1} has {len(row)} columns; the MMLU CSV "
                        "layout is question, A, B, C, D, answer letter (no header)"
                    )
                items.append(_item(subject, index, row[0], row[1:5], row[5]))
    return items


def _read_parquet(files: list[Path]) -> list[Item]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidBenchmark(
            "mmlu: reading parquet needs pyarrow: pip install 'scaimind-nb[parquet]'"
        ) from None
    items: list[Item] = []
    counters: dict[str, int] = defaultdict(int)
    for file in files:
        with open_regular(file, str(file)) as fh:
            rows = pq.read_table(fh).to_pylist()
        for row in rows:
            subject = str(row.get("subject") or file.parent.name)
            items.append(
                _item(
                    subject, counters[subject], row["question"], list(row["choices"]), row["answer"]
                )
            )
            counters[subject] += 1
    return items


def _read_jsonl(file: Path) -> tuple[list[Item], list[Item]]:
    splits: dict[str, list[Item]] = {"test": [], "dev": []}
    counters: dict[tuple[str, str], int] = defaultdict(int)
    with open_regular(file, str(file), encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = load_json(line, f"mmlu: {file} line {number}", error=InvalidBenchmark)
            if not isinstance(row, dict) or not {"question", "choices", "answer"} <= row.keys():
                raise InvalidBenchmark(
                    f"mmlu: {file} line {number} must be an object with question, choices, "
                    "answer (and subject)"
                )
            split = "dev" if row.get("split") == "dev" else "test"
            subject = str(row.get("subject") or "all")
            index = counters[(split, subject)]
            counters[(split, subject)] += 1
            splits[split].append(
                _item(subject, index, row["question"], list(row["choices"]), row["answer"])
            )
    return splits["test"], splits["dev"]


def load_data(path: Path) -> tuple[list[Item], dict[str, list[Item]]]:
    """(test items, dev items by subject) from any of the three layouts."""
    test: list[Item]
    dev: list[Item] = []
    try:
        if path.is_file() and path.suffix == ".jsonl":
            test, dev = _read_jsonl(path)
        elif path.is_file() and path.suffix == ".parquet":
            test = _read_parquet([path])
        elif path.is_dir():
            root = path / "data" if (path / "data" / "test").is_dir() else path
            parquet = sorted(path.rglob("*.parquet"))
            if (root / "test").is_dir():
                test = _read_csv_dir(root / "test", "test")
                dev = _read_csv_dir(root / "dev", "dev") if (root / "dev").is_dir() else []
            elif parquet:
                test = _read_parquet([f for f in parquet if f.name.startswith("test")])
                dev = _read_parquet([f for f in parquet if f.name.startswith("dev")])
            elif list(path.glob("*.jsonl")):
                test, dev = _read_jsonl(
                    next(iter(sorted(path.glob("*test*.jsonl")) or sorted(path.glob("*.jsonl"))))
                )
                for extra in sorted(path.glob("*dev*.jsonl")):
                    dev += _read_jsonl(extra)[0]
            else:
                raise InvalidBenchmark(f"mmlu: {path} holds no MMLU data; {HOW_TO}")
        else:
            raise InvalidBenchmark(f"mmlu: {path} does not exist; {HOW_TO}")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError) as exc:
        raise InvalidBenchmark(f"mmlu: cannot read {path}: {exc}") from None
    if not test:
        raise InvalidBenchmark(f"mmlu: {path} holds no test questions; {HOW_TO}")
    by_subject: dict[str, list[Item]] = defaultdict(list)
    for item in dev:
        by_subject[item["subject"]].append(item)
    return test, dict(by_subject)


def stratified_subset(items: list[Item], k: int | None, seed: int) -> list[Item]:
    """k items, each subject getting its proportional share (largest remainder), seeded."""
    import random

    if k is None or k >= len(items):
        return list(items)
    by_subject: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        by_subject[item["subject"]].append(item)
    subjects = sorted(by_subject)
    exact = {s: k * len(by_subject[s]) / len(items) for s in subjects}
    quota = {s: int(exact[s]) for s in subjects}
    for s in sorted(subjects, key=lambda s: (-(exact[s] - quota[s]), s))[: k - sum(quota.values())]:
        quota[s] += 1
    chosen: set[str] = set()
    for s in subjects:
        pool = by_subject[s]
        chosen.update(x["id"] for x in random.Random(f"{seed}:{s}").sample(pool, quota[s]))
    return [x for x in items if x["id"] in chosen]


def _format_question(item: Item) -> str:
    lines = [item["question"].strip()]
    lines += [
        f"{letter}. {choice}" for letter, choice in zip(LETTERS, item["choices"], strict=True)
    ]
    return "\n".join(lines) + "\nAnswer:"


def build_prompt(item: Item, shots: list[Item]) -> str:
    """Hendrycks/lm-eval prompt: subject header, k solved dev examples, the question."""
    subject = item["subject"].replace("_", " ")
    parts = [f"The following are multiple choice questions (with answers) about {subject}.\n\n"]
    for shot in shots:
        parts.append(f"{_format_question(shot)} {LETTERS[shot['answer']]}\n\n")
    parts.append(_format_question(item))
    return "".join(parts)


def extract_letter(reply: str, choices: list[str]) -> str | None:
    """The answer-letter extraction ladder; None when the reply does not name one choice."""
    text = _THINK.sub("", reply).strip()
    found = _ANSWER_LINE.findall(text)
    if found:
        return str(found[-1])
    match = _LEADING_LETTER.match(text)
    if match:
        return match.group(1)
    plain = text.rstrip(".").strip().casefold()
    for letter, choice in zip(LETTERS, choices, strict=True):
        if plain and plain == choice.strip().rstrip(".").casefold():
            return letter
    return None


class MMLURunner:
    """Scores MMLU-format data zero- or few-shot."""

    name = "mmlu"

    def _path(self, spec: BenchmarkSpec, ctx: RunContext) -> Path:
        if spec.dataset:
            return ctx.resolve_path(spec.dataset)
        configured = ctx.settings.get("mmlu_data") or os.environ.get(ENV)
        if not configured:
            raise InvalidBenchmark(HOW_TO)
        return Path(configured).expanduser()

    def _settings(self, spec: BenchmarkSpec) -> dict[str, Any]:
        scoring = spec.parameters.get("scoring", "auto")
        if scoring not in ("auto", "loglikelihood", "generative"):
            raise InvalidBenchmark(
                f"mmlu: scoring={scoring!r}; use auto, loglikelihood or generative"
            )
        choices_as = spec.parameters.get("choices_as", "letters")
        if choices_as not in ("letters", "text"):
            raise InvalidBenchmark(f"mmlu: choices_as={choices_as!r}; use letters or text")
        return {
            "num_fewshot": int_param(spec, "num_fewshot", 0),
            "seed": int_param(spec, "seed", 1234),
            "batch_size": int_param(spec, "batch_size", 8, minimum=1),
            "max_new_tokens": int_param(spec, "max_new_tokens", 8, minimum=1),
            "scoring": scoring,
            "choices_as": choices_as,
        }

    def validate(self, spec: BenchmarkSpec, ctx: RunContext) -> None:
        """The data must be found and readable, the parameters must parse."""
        cfg = self._settings(spec)
        test, dev = load_data(self._path(spec, ctx))
        if cfg["num_fewshot"]:
            short = sorted(
                {x["subject"] for x in test if len(dev.get(x["subject"], [])) < cfg["num_fewshot"]}
            )
            if short:
                raise InvalidBenchmark(
                    f"mmlu: num_fewshot={cfg['num_fewshot']} but the dev split has fewer "
                    f"examples for {', '.join(short[:5])}; lower num_fewshot or add dev data"
                )

    def run(self, spec: BenchmarkSpec, model: ModelBackend, ctx: RunContext) -> RunnerResult:
        """Score the chosen questions, by log-likelihood or generation, batch by batch."""
        self.validate(spec, ctx)
        cfg = self._settings(spec)
        path = self._path(spec, ctx)
        test, dev = load_data(path)
        items = stratified_subset(test, spec.num_samples, cfg["seed"])
        can_score = supports_loglikelihood(model)
        if cfg["scoring"] == "loglikelihood" and not can_score:
            raise InvalidBenchmark(
                "mmlu: scoring=loglikelihood but this model cannot score continuations; "
                "use scoring=generative or auto"
            )
        mode = "loglikelihood" if cfg["scoring"] != "generative" and can_score else "generative"
        prompts = [build_prompt(x, dev.get(x["subject"], [])[: cfg["num_fewshot"]]) for x in items]
        samples: list[dict[str, Any]] = []
        total, size = len(items), cfg["batch_size"]
        for start in range(0, total, size):
            batch = list(
                zip(items[start : start + size], prompts[start : start + size], strict=True)
            )
            if mode == "loglikelihood":
                samples += self._score_batch(model, batch, cfg["choices_as"])
            else:
                samples += self._generate_batch(model, batch, cfg["max_new_tokens"])
            ctx.checkpoint(len(samples), total)
        return self._result(samples, items, mode, cfg, spec, path, len(test))

    def _score_batch(
        self, model: ModelBackend, batch: list[tuple[Item, str]], choices_as: str
    ) -> list[dict[str, Any]]:
        pairs = []
        for item, prompt in batch:
            if choices_as == "letters":
                pairs += [(prompt, f" {letter}") for letter in LETTERS]
            else:
                pairs += [(prompt, f" {choice}") for choice in item["choices"]]
        scores = model.loglikelihood(pairs)  # type: ignore[attr-defined]
        if len(scores) != len(pairs):
            raise TypeError(f"loglikelihood returned {len(scores)} scores for {len(pairs)} pairs")
        out = []
        for i, (item, _) in enumerate(batch):
            ll = [float(s) for s in scores[4 * i : 4 * i + 4]]
            lengths = [len(c) for _, c in pairs[4 * i : 4 * i + 4]]
            norm = [s / n for s, n in zip(ll, lengths, strict=True)]
            pred = max(range(4), key=lambda j: ll[j])
            pred_norm = max(range(4), key=lambda j: norm[j])
            out.append(
                {
                    "id": item["id"],
                    "subject": item["subject"],
                    "answer": LETTERS[item["answer"]],
                    "prediction": LETTERS[pred],
                    "correct": pred == item["answer"],
                    "correct_norm": pred_norm == item["answer"],
                    "loglikelihoods": ll,
                }
            )
        return out

    def _generate_batch(
        self, model: ModelBackend, batch: list[tuple[Item, str]], max_new_tokens: int
    ) -> list[dict[str, Any]]:
        replies = model.generate(
            [prompt for _, prompt in batch],
            max_new_tokens=max_new_tokens,
            temperature=0.0,
            stop=_GENERATIVE_STOP,
        )
        out = []
        for (item, _), reply in zip(batch, replies, strict=True):
            reply = cut_at_stop(reply, _GENERATIVE_STOP)
            letter = extract_letter(reply, item["choices"])
            correct = letter == LETTERS[item["answer"]]
            out.append(
                {
                    "id": item["id"],
                    "subject": item["subject"],
                    "answer": LETTERS[item["answer"]],
                    "prediction": letter,
                    "correct": correct,
                    "correct_norm": correct,
                    "unparsed": letter is None,
                    "reply": reply[:500],
                }
            )
        return out

    def _result(
        self,
        samples: list[dict[str, Any]],
        items: list[Item],
        mode: str,
        cfg: dict[str, Any],
        spec: BenchmarkSpec,
        path: Path,
        n_total: int,
    ) -> RunnerResult:
        acc = [float(s["correct"]) for s in samples]
        acc_norm = [float(s["correct_norm"]) for s in samples]
        per_subject: dict[str, dict[str, Any]] = {}
        for subject in sorted({s["subject"] for s in samples}):
            values = [float(s["correct"]) for s in samples if s["subject"] == subject]
            per_subject[subject] = {
                "n": len(values),
                "accuracy": mean(values),
                "stderr": mean_stderr(values),
            }
        subject_means = [v["accuracy"] for v in per_subject.values()]
        metrics = {
            "accuracy": mean(acc),
            "acc_norm": mean(acc_norm),
            "macro_accuracy": mean(subject_means),
        }
        stderr = {
            name: se
            for name, se in (
                ("accuracy", mean_stderr(acc)),
                ("acc_norm", mean_stderr(acc_norm)),
                ("macro_accuracy", mean_stderr(subject_means)),
            )
            if se is not None
        }
        ids = [x["id"] for x in items]
        extra = {
            "version": VERSION,
            "scoring_mode": mode,
            "dataset": str(path),
            "n_total": n_total,
            "num_fewshot": cfg["num_fewshot"],
            "choices_as": cfg["choices_as"] if mode == "loglikelihood" else None,
            "selection": {
                "method": "all" if spec.num_samples is None else "seeded_stratified",
                "seed": cfg["seed"],
                "ids": ids,
                "ids_sha256": ids_digest(ids),
            },
            "per_subject": per_subject,
            "counts": {
                "correct": int(sum(acc)),
                "incorrect": len(acc) - int(sum(acc)),
                "unparsed": sum(1 for s in samples if s.get("unparsed")),
            },
        }
        return RunnerResult(
            metrics=metrics,
            num_samples=len(samples),
            stderr=stderr,
            extra=extra,
            samples=samples,
            primary_metric="accuracy",
            proportions=("accuracy", "acc_norm"),
        )


RUNNER = MMLURunner()
