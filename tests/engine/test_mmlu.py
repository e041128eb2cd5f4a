"""The mmlu runner on the project's own MMLU-format demo set."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from scaimind_local._benchmarks.base import BenchmarkSpec, InvalidBenchmark, RunContext
from scaimind_local._benchmarks.mmlu import (
    LETTERS,
    RUNNER,
    build_prompt,
    extract_letter,
    load_data,
    stratified_subset,
)

from .conftest import MMLU_DEMO, Progress, make_context


def demo_rows(split: str = "test") -> list[tuple[str, list[str]]]:
    rows = []
    for file in sorted((MMLU_DEMO / "data" / split).glob("*.csv")):
        with open(file, newline="") as fh:
            rows += [(file.name.rsplit("_", 1)[0], row) for row in csv.reader(fh)]
    return rows


class Letter:
    """A generative-only model that always answers the same text."""

    def __init__(self, reply: str) -> None:
        self.reply = reply

    def generate(self, prompts: list[str], **kwargs: Any) -> list[str]:
        return [self.reply] * len(prompts)


class KnownScores:
    """Scores continuations from a function of (question, continuation)."""

    def __init__(self, score: Any) -> None:
        self.score = score
        self.pairs: list[tuple[str, str]] = []

    def generate(self, prompts: list[str], **kwargs: Any) -> list[str]:
        raise AssertionError("a model that scores continuations must not be asked to generate")

    def loglikelihood(self, pairs: list[tuple[str, str]]) -> list[float]:
        self.pairs += pairs
        return [self.score(context, continuation) for context, continuation in pairs]


def spec(**kwargs: Any) -> BenchmarkSpec:
    parameters = kwargs.pop("parameters", {})
    return BenchmarkSpec("mmlu", dataset=str(MMLU_DEMO), parameters=parameters, **kwargs)


def test_a_model_always_answering_a_gets_the_share_of_a(ctx: RunContext) -> None:
    rows = demo_rows()
    share = sum(row[5] == "A" for _, row in rows) / len(rows)
    result = RUNNER.run(spec(), Letter(" A"), ctx)
    assert result.metrics["accuracy"] == pytest.approx(share)
    assert result.extra["scoring_mode"] == "generative"
    assert result.num_samples == len(rows) == 40
    per_subject = result.extra["per_subject"]
    for subject, stats in per_subject.items():
        subject_rows = [row for s, row in rows if s == subject]
        assert stats["accuracy"] == pytest.approx(
            sum(row[5] == "A" for row in subject_rows) / len(subject_rows)
        )
    macro = sum(s["accuracy"] for s in per_subject.values()) / len(per_subject)
    assert result.metrics["macro_accuracy"] == pytest.approx(macro)
    n = len(rows)
    assert result.stderr["accuracy"] == pytest.approx((share * (1 - share) / (n - 1)) ** 0.5)


def test_unparsed_generations_count_as_wrong_and_are_counted(ctx: RunContext) -> None:
    result = RUNNER.run(spec(), Letter("I am not sure."), ctx)
    assert result.metrics["accuracy"] == 0.0
    assert result.extra["counts"]["unparsed"] == result.num_samples


def correct_answers() -> dict[str, str]:
    """question text -> correct choice text, read straight from the CSVs."""
    return {row[0]: row[1 + LETTERS.index(row[5])] for _, row in demo_rows()}


def question_of(context: str) -> str:
    return context.rsplit("\n\n", 1)[-1].split("\n", 1)[0]


def test_known_loglikelihoods_give_the_expected_acc_and_acc_norm() -> None:
    # The right choice scores -0.3 per character, every wrong choice -2.0 in all: raw sums
    # favour short right answers, per-character normalisation favours right answers whose
    # wrong alternatives are all short.
    answers = correct_answers()

    def score(context: str, continuation: str) -> float:
        right = answers[question_of(context)]
        return -0.3 * len(continuation) if continuation == f" {right}" else -2.0

    result = RUNNER.run(spec(parameters={"choices_as": "text"}), KnownScores(score), make_context())
    acc, norm = [], []
    for _, row in demo_rows():
        right = row[1 + LETTERS.index(row[5])]
        wrong = [c for c in row[1:5] if c != right]
        acc.append(-0.3 * (len(right) + 1) > -2.0)
        norm.append(all(-2.0 / (len(w) + 1) < -0.3 for w in wrong))
    assert result.extra["scoring_mode"] == "loglikelihood"
    assert result.metrics["accuracy"] == pytest.approx(sum(acc) / len(acc))
    assert result.metrics["acc_norm"] == pytest.approx(sum(norm) / len(norm))
    assert result.metrics["accuracy"] != result.metrics["acc_norm"]


def test_letter_loglikelihoods_pick_the_argmax(ctx: RunContext) -> None:
    answers = {row[0]: row[5] for _, row in demo_rows()}

    # right on every question whose answer is B or C, otherwise prefers D
    def score(context: str, continuation: str) -> float:
        right = answers[question_of(context)]
        if right in "BC":
            return -0.5 if continuation == f" {right}" else -3.0
        return -0.5 if continuation == " D" else -3.0

    model = KnownScores(score)
    result = RUNNER.run(spec(), model, ctx)
    expected = sum(a in "BCD" for a in answers.values()) / len(answers)
    assert result.metrics["accuracy"] == pytest.approx(expected)
    assert result.metrics["acc_norm"] == result.metrics["accuracy"]  # equal-length letters
    assert {c for _, c in model.pairs} == {" A", " B", " C", " D"}
    assert all(ctx_.endswith("Answer:") for ctx_, _ in model.pairs)


def test_zero_shot_by_default_and_num_fewshot_uses_the_dev_split(ctx: RunContext) -> None:
    zero = KnownScores(lambda c, x: 0.0)
    RUNNER.run(spec(num_samples=4), zero, ctx)
    assert all(c.count("Answer:") == 1 for c, _ in zero.pairs)
    few = KnownScores(lambda c, x: 0.0)
    RUNNER.run(spec(num_samples=4, parameters={"num_fewshot": "3"}), few, make_context())
    context = few.pairs[0][0]
    assert context.count("Answer:") == 4
    first_dev = next(row for s, row in demo_rows("dev") if context.count(row[0]))
    assert f"{first_dev[0]}\nA. {first_dev[1]}" in context
    assert context.startswith("The following are multiple choice questions (with answers) about")


def test_num_fewshot_beyond_the_dev_split_is_refused(ctx: RunContext) -> None:
    with pytest.raises(InvalidBenchmark, match="num_fewshot=6"):
        RUNNER.validate(spec(parameters={"num_fewshot": "6"}), ctx)


def test_num_samples_subsets_are_reproducible_and_stratified() -> None:
    def ids(seed: str, k: int = 12) -> list[str]:
        model = Letter("A")
        s = spec(num_samples=k, parameters={"seed": seed})
        return RUNNER.run(s, model, make_context()).extra["selection"]["ids"]

    assert ids("7") == ids("7")
    assert ids("7") != ids("8")
    assert Counter(i.split("/")[0] for i in ids("7")) == {
        "basic_chemistry": 3,
        "computer_science": 3,
        "elementary_mathematics": 3,
        "world_geography": 3,
    }
    assert len(ids("7", 5)) == 5


def test_stratified_subset_is_proportional_with_largest_remainders() -> None:
    items = [{"id": f"a/{i}", "subject": "a"} for i in range(6)] + [
        {"id": f"b/{i}", "subject": "b"} for i in range(3)
    ]
    chosen = stratified_subset(items, 4, seed=1)
    assert Counter(x["subject"] for x in chosen) == {"a": 3, "b": 1}
    assert stratified_subset(items, None, seed=1) == items


def test_without_data_the_spec_is_refused_with_how_to(
    ctx: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCAIMIND_MMLU_DATA", raising=False)
    with pytest.raises(InvalidBenchmark, match="SCAIMIND_MMLU_DATA"):
        RUNNER.validate(BenchmarkSpec("mmlu"), ctx)


def test_server_setting_and_environment_variable_provide_data(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SCAIMIND_MMLU_DATA", raising=False)
    result = RUNNER.run(
        BenchmarkSpec("mmlu", num_samples=4), Letter("B"), make_context(mmlu_data=str(MMLU_DEMO))
    )
    assert result.num_samples == 4
    monkeypatch.setenv("SCAIMIND_MMLU_DATA", str(MMLU_DEMO))
    RUNNER.validate(BenchmarkSpec("mmlu"), make_context())


def test_parquet_and_jsonl_layouts_read_the_same_questions(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    test, dev = load_data(MMLU_DEMO)
    rows = [
        {
            "question": x["question"],
            "subject": x["subject"],
            "choices": x["choices"],
            "answer": x["answer"],
        }
        for x in test
    ]
    (tmp_path / "all").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "all" / "test-00000-of-00001.parquet")
    dev_rows = [
        {
            "question": x["question"],
            "subject": x["subject"],
            "choices": x["choices"],
            "answer": x["answer"],
        }
        for items in dev.values()
        for x in items
    ]
    pq.write_table(pa.Table.from_pylist(dev_rows), tmp_path / "all" / "dev-00000-of-00001.parquet")
    parquet_test, parquet_dev = load_data(tmp_path)
    assert parquet_test == test and parquet_dev == dev

    jsonl = tmp_path / "mmlu.jsonl"
    lines = [dict(r, answer=LETTERS[r["answer"]]) for r in rows] + [
        dict(r, split="dev") for r in dev_rows
    ]
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in lines))
    jsonl_test, jsonl_dev = load_data(jsonl)
    assert jsonl_test == test and jsonl_dev == dev


def test_malformed_rows_are_refused_with_the_reason(tmp_path: Path, ctx: RunContext) -> None:
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "x_test.csv").write_text("question,A,B,C,D\n")
    with pytest.raises(InvalidBenchmark, match="has 5 columns"):
        RUNNER.validate(BenchmarkSpec("mmlu", dataset=str(tmp_path)), ctx)
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "q", "choices": ["a", "b"], "answer": 0}) + "\n")
    with pytest.raises(InvalidBenchmark, match="exactly 4"):
        RUNNER.validate(BenchmarkSpec("mmlu", dataset=str(bad)), ctx)


@pytest.mark.parametrize(
    ("reply", "letter"),
    [
        ("ANSWER: B", "B"),
        ("I think a is wrong. Answer: (C)", "C"),
        ("answer: A\nwait, final answer: D", "D"),
        ("<think>Answer: A</think> B", "B"),
        (" C", "C"),
        ("D.", "D"),
        ("B. 4", "B"),
        ("Paris", "B"),
        ("a", None),
        ("A cat", None),
        ("It seems so", None),
        ("", None),
    ],
)
def test_extraction_ladder(reply: str, letter: str | None) -> None:
    assert extract_letter(reply, ["Lyon", "Paris", "Marseille", "Nice"]) == letter


def test_prompt_format() -> None:
    test, dev = load_data(MMLU_DEMO)
    item = next(x for x in test if x["subject"] == "world_geography")
    prompt = build_prompt(item, dev["world_geography"][:1])
    assert prompt == (
        "The following are multiple choice questions (with answers) about world geography.\n\n"
        "What is the capital of Germany?\nA. Berlin\nB. Munich\nC. Hamburg\nD. Bonn\nAnswer: A\n\n"
        "What is the capital of France?\nA. Lyon\nB. Paris\nC. Marseille\nD. Nice\nAnswer:"
    )


def test_progress_is_reported_per_batch() -> None:
    progress = Progress()
    RUNNER.run(spec(parameters={"batch_size": "16"}), Letter("A"), make_context(progress))
    assert progress.reports == [(16, 40), (32, 40), (40, 40)]
