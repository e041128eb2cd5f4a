"""`custom-*`: score a model on a JSONL dataset of {prompt, reference} records.

Fields: the prompt is `prompt`, `input` or `question`; the reference is `reference`, `target`,
`answer` or `output` (a string or a list of accepted strings); `id` is optional; other fields
are kept in the per-sample record. Parameters: `max_new_tokens` (64), `temperature` (0),
`match` (`exact` | `contains` | `regex` | `numeric`), `pattern` (regex extraction), `tolerance`.

Regular expressions (the `pattern` parameter, the references of `match=regex`) come from users,
so they run in the third-party `regex` engine with a time limit per match (server setting
`regex_timeout`, default 1 s) and without holding the GIL; a pattern that exceeds it fails the
benchmark with the reason instead of freezing a worker.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from typing import Any

import regex

from .._backends.base import ModelBackend
from .._digest import PREFIX
from .._drive import open_regular, regular_file
from .._json import load_json
from ._shared import float_param, int_param, length_batches, mean, mean_stderr
from .base import BenchmarkSpec, DataInfo, InvalidBenchmark, RunContext, RunnerResult

PROMPT_FIELDS = ("prompt", "input", "question")
REFERENCE_FIELDS = ("reference", "target", "answer", "output")
MATCHES = ("exact", "contains", "regex", "numeric")
PARAMETERS = ("max_new_tokens", "temperature", "match", "pattern", "tolerance", "batch_size")
METRIC = {
    "exact": "exact_match",
    "contains": "contains_match",
    "regex": "regex_match",
    "numeric": "numeric_match",
}
"""The metric a match mode reports: the share of items whose answer matched that way."""
MAX_LINE = 1 << 20
DEFAULT_MAX_DATASET = 100 << 20
DEFAULT_REGEX_TIMEOUT = 1.0
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


def _number(text: str) -> float | None:
    cleaned = re.sub(r"[$€£*_]|(?<=\d),(?=\d{3})", "", text)
    found = _NUMBER.findall(cleaned)
    return float(found[-1]) if found else None


class _Options:
    """The parameters of one spec, parsed once, and the time limit of one regex match."""

    def __init__(self, spec: BenchmarkSpec, regex_timeout: float = DEFAULT_REGEX_TIMEOUT) -> None:
        p = spec.parameters
        self.regex_timeout = regex_timeout
        unknown = sorted(set(p) - set(PARAMETERS))
        if unknown:
            raise InvalidBenchmark(
                f"{spec.name}: unknown parameter(s) {', '.join(unknown)}; "
                f"known: {', '.join(PARAMETERS)}"
            )
        self.max_new_tokens = int_param(spec, "max_new_tokens", 64, minimum=1)
        self.batch_size = int_param(spec, "batch_size", 8, minimum=1)
        self.temperature = float_param(spec, "temperature", 0.0)
        self.tolerance = float_param(spec, "tolerance", 1e-6)
        self.match = p.get("match", "exact")
        if self.match not in MATCHES:
            raise InvalidBenchmark(
                f"{spec.name}: match={self.match!r} is not one of {', '.join(MATCHES)}"
            )
        try:
            self.pattern = regex.compile(p["pattern"]) if "pattern" in p else None
        except (regex.error, RecursionError) as exc:
            raise InvalidBenchmark(f"{spec.name}: pattern is not a valid regex: {exc}") from None

    def _search(self, pattern: Any, reply: str, what: str) -> Any:
        """`regex.search` within the time limit; past it, InvalidBenchmark saying which."""
        try:
            return regex.search(pattern, reply, timeout=self.regex_timeout, concurrent=True)
        except TimeoutError:
            raise InvalidBenchmark(
                f"{what} took longer than {self.regex_timeout:g} s to match a "
                "completion (nested quantifiers such as (a|aa)+ backtrack without end): "
                "simplify it"
            ) from None

    def correct(self, reply: str, references: list[str], where: str = "the dataset") -> bool:
        reply = reply[:MAX_LINE]
        if self.pattern is not None:
            found = self._search(self.pattern, reply, "the pattern parameter")
            if found is None:
                return False
            reply = found.group(1) if self.pattern.groups else found.group(0)
        return any(self._one(reply, ref, where) for ref in references)

    def _one(self, reply: str, ref: str, where: str) -> bool:
        if self.match == "contains":
            return _normalise(ref) in _normalise(reply)
        if self.match == "regex":
            try:
                return self._search(ref, reply, f"the regex reference of {where}") is not None
            except (regex.error, RecursionError):
                return False
        if self.match == "numeric":
            got, want = _number(reply), _number(ref)
            return (
                got is not None
                and want is not None
                and math.isclose(got, want, rel_tol=self.tolerance, abs_tol=self.tolerance)
            )
        return _normalise(reply) == _normalise(ref)


def _options(spec: BenchmarkSpec, ctx: RunContext) -> _Options:
    return _Options(spec, float(ctx.settings.get("regex_timeout") or DEFAULT_REGEX_TIMEOUT))


def _pick(record: dict[str, Any], fields: tuple[str, ...]) -> Any:
    return next((record[f] for f in fields if f in record), None)


def read_records(
    path: Path, uri: str, limit: int | None, hasher: Any = None
) -> list[dict[str, Any]]:
    """The first `limit` records of a JSONL file; a bad line raises with its number.

    `hasher` (a hashlib object) is fed every line read, so with `limit=None` it digests the
    exact bytes that were parsed.
    """
    records: list[dict[str, Any]] = []
    with open_regular(path, uri) as fh:
        for number, raw in enumerate(fh, start=1):
            if limit is not None and len(records) >= limit:
                break
            if hasher is not None:
                hasher.update(raw)
            if len(raw) > MAX_LINE:
                raise ValueError(f"{uri} line {number}: longer than 1 MiB")
            if not raw.strip():
                continue
            where = f"{uri} line {number}"
            record = load_json(raw, where, error=InvalidBenchmark)
            if not isinstance(record, dict):
                raise ValueError(f"{where}: expected a JSON object, got {type(record).__name__}")
            prompt, reference = _pick(record, PROMPT_FIELDS), _pick(record, REFERENCE_FIELDS)
            if not isinstance(prompt, str):
                raise ValueError(f"{where}: no string prompt (one of {', '.join(PROMPT_FIELDS)})")
            refs = reference if isinstance(reference, list) else [reference]
            if reference is None or not refs or not all(isinstance(r, str) for r in refs):
                raise ValueError(
                    f"{where}: no reference (one of {', '.join(REFERENCE_FIELDS)}: "
                    "a string or a list of strings)"
                )
            records.append({**record, "_line": number, "_prompt": prompt, "_refs": refs})
    if not records:
        raise ValueError(f"{uri}: the dataset holds no records")
    return records


class CustomRunner:
    """Generates one completion per record and scores it against the reference."""

    name = "custom-"

    def validate(self, spec: BenchmarkSpec, ctx: RunContext) -> None:
        _options(spec, ctx)
        if not spec.dataset:
            raise InvalidBenchmark(
                f"benchmark {spec.name!r} needs a dataset: a scaidrive://org/path JSONL file"
            )
        size = regular_file(ctx.resolve_path(spec.dataset), spec.dataset).st_size
        limit = int(ctx.settings.get("custom_max_bytes") or DEFAULT_MAX_DATASET)
        if size > limit:
            raise InvalidBenchmark(
                f"dataset {spec.dataset!r} is larger than this coordinator's limit of {limit} bytes"
            )

    def describe(self, spec: BenchmarkSpec, ctx: RunContext) -> DataInfo:
        """Validate, then parse every line: the digest of the file, its record count."""
        self.validate(spec, ctx)
        assert spec.dataset is not None
        hasher = hashlib.sha256()
        try:
            records = read_records(ctx.resolve_path(spec.dataset), spec.dataset, None, hasher)
        except ValueError as exc:
            raise InvalidBenchmark(str(exc)) from None
        return DataInfo(PREFIX + hasher.hexdigest(), len(records), spec.dataset)

    def run(self, spec: BenchmarkSpec, model: ModelBackend, ctx: RunContext) -> RunnerResult:
        options = _options(spec, ctx)
        assert spec.dataset is not None
        records = read_records(ctx.resolve_path(spec.dataset), spec.dataset, spec.num_samples)
        total = len(records)
        prompts = [record["_prompt"] for record in records]
        samples: list[dict[str, Any] | None] = [None] * total
        ctx.checkpoint(0, total)
        done = 0
        for indices in length_batches(model, prompts, options.batch_size):
            replies = model.generate(
                [prompts[i] for i in indices],
                max_new_tokens=options.max_new_tokens,
                temperature=options.temperature,
                stop=None,
            )
            if len(replies) != len(indices):
                raise TypeError(
                    f"generate returned {len(replies)} replies for {len(indices)} prompts"
                )
            for i, reply in zip(indices, replies, strict=True):
                samples[i] = _sample(records[i], reply, options)
            done += len(indices)
            ctx.checkpoint(done, total)
        scored = [s for s in samples if s is not None]
        verdicts = [float(s["correct"]) for s in scored]
        se = mean_stderr(verdicts)
        metric = METRIC[options.match]
        return RunnerResult(
            metrics={metric: mean(verdicts)},
            num_samples=total,
            stderr={metric: se} if se is not None else {},
            extra={"match": options.match, "correct": int(sum(verdicts)), "dataset": spec.dataset},
            samples=scored,
            primary_metric=metric,
            proportions=(metric,),
        )


def _sample(record: dict[str, Any], reply: str, options: _Options) -> dict[str, Any]:
    """The stored record of one item: its id, prompt, reference, the model's reply and the verdict."""
    refs = record["_refs"]
    return {
        "id": str(record.get("id", record["_line"])),
        "line": record["_line"],
        "prompt": record["_prompt"],
        "reference": refs if len(refs) > 1 else refs[0],
        "completion": reply,
        "correct": options.correct(reply, refs, f"line {record['_line']}"),
    }


RUNNER = CustomRunner()
