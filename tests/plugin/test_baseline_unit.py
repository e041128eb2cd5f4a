"""The baseline file: strict validation, lookups, live entries, per-item outcomes and the bless step."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from pytest_scaimind._baseline import (
    FORMAT,
    Baseline,
    BaselineError,
    decode_items,
    encode_items,
    is_live,
    render,
    stored_stderr,
    stored_value,
)
from pytest_scaimind._record import Action, GateRecord, Outcome
from scaimind_nb.stats import ItemOutcomes


def _record(benchmark: str = "mmlu[n=20]", score: float = 0.65, **extra) -> GateRecord:
    return GateRecord(
        test="t.py::test_mmlu",
        benchmark=benchmark,
        spec={"name": benchmark.split("[")[0], "num_samples": 20},
        verdict=Outcome.PASS,
        action=Action.PASS,
        message="ok",
        metric="accuracy",
        score=score,
        metrics={"accuracy": score, "acc_norm": 0.6},
        stderr={"accuracy": 0.1},
        n=20,
        evaluation_id="eval_1",
        primary_metric="accuracy",
        proportions=["acc_norm", "accuracy"],
        **extra,
    )


def _outcomes(n: int, right: int, seed: int = 0) -> ItemOutcomes:
    rng = random.Random(seed)
    correct = set(rng.sample(range(n), right))
    return ItemOutcomes.from_mapping({f"q/{i}": float(i in correct) for i in range(n)})


CONTEXT = {"job_id": "job_1", "model_uri": "scaidrive://m", "checkpoint_id": ""}


def test_missing_file_is_empty_and_hints_how_to_create(tmp_path):
    baseline = Baseline.load(tmp_path / "b.json")
    assert baseline.entry("mmlu") is None
    assert "--scaimind-update-baseline" in baseline.missing_hint("mmlu")
    assert "--scaimind-baseline=PATH" in Baseline.load(None).missing_hint("mmlu")


def test_bless_then_load_round_trip_with_per_item_outcomes(tmp_path):
    path = tmp_path / "b.json"
    baseline = Baseline.load(path)
    items = _outcomes(20, 13)
    changes = baseline.bless([_record()], CONTEXT, {"mmlu[n=20]": items})
    baseline.save()
    assert changes == ["+ mmlu[n=20]: new, accuracy 0.6500 (n=20, 20 per-item outcomes)"]
    data = json.loads(path.read_text())
    assert data["format"] == FORMAT
    entry = data["benchmarks"]["mmlu[n=20]"]
    assert entry["metrics"]["accuracy"] == {"value": 0.65, "stderr": 0.1}
    assert entry["metric"] == "accuracy" and entry["proportions"] == ["acc_norm", "accuracy"]
    assert entry["source"]["evaluation_id"] == "eval_1" and entry["source"]["job_id"] == "job_1"
    assert entry["items"]["metric"] == "accuracy" and entry["items"]["n"] == 20
    assert "discordance" not in entry  # nothing earlier to compare with
    again = Baseline.load(path)
    assert stored_value(again.entry("mmlu[n=20]") or {}, "Accuracy") == 0.65
    assert stored_stderr(again.entry("mmlu[n=20]") or {}, "accuracy") == 0.1
    assert stored_value(again.entry("mmlu[n=20]") or {}, "f1") is None
    loaded, note = again.items("mmlu[n=20]", "accuracy")
    assert loaded == items and note == ""
    assert again.items("mmlu[n=20]", "acc_norm") == (
        None,
        "the baseline's per-item outcomes measure accuracy, not acc_norm",
    )


def test_a_second_bless_reports_the_change_and_the_discordance(tmp_path):
    path = tmp_path / "b.json"
    first = Baseline.load(path)
    first.bless([_record(), _record("arc", 0.5)], CONTEXT, {"mmlu[n=20]": _outcomes(20, 13)})
    first.save()
    before = _outcomes(20, 13).scores
    after = dict(before)
    flipped = [k for k, v in before.items() if v == 1.0][:3]
    for k in flipped:
        after[k] = 0.0
    second = Baseline.load(path)
    changes = second.bless(
        [_record(score=0.5)],
        CONTEXT,
        {"mmlu[n=20]": ItemOutcomes.from_mapping(after)},
    )
    assert changes == [
        "~ mmlu[n=20]: accuracy 0.6500 -> 0.5000 (-0.1500), 15.0% of items changed "
        "(n=20, 20 per-item outcomes)",
        "  arc: kept (not gated in this session)",
    ]
    entry = second.benchmarks["mmlu[n=20]"]
    assert entry["discordance"] == {
        "rate": 0.15,
        "items": 20,
        "previous_evaluation_id": "eval_1",
    }
    third = Baseline.load(path)
    unchanged = third.bless(
        [_record()], CONTEXT, {"mmlu[n=20]": "per-item outcomes are not available (no route)"}
    )
    assert unchanged[0] == (
        "= mmlu[n=20]: accuracy unchanged "
        "(n=20; no per-item outcomes: per-item outcomes are not available (no route))"
    )
    live = Baseline(path, {"mmlu[n=20]": {"job_id": "job_prev"}})
    assert live.bless([_record()], CONTEXT, {})[0].startswith("~ mmlu[n=20]: live job job_prev -> ")


def test_hand_edited_values_no_longer_pair_with_their_items(tmp_path):
    path = tmp_path / "b.json"
    baseline = Baseline.load(path)
    baseline.bless([_record()], CONTEXT, {"mmlu[n=20]": _outcomes(20, 13)})
    baseline.save()
    data = json.loads(path.read_text())
    data["benchmarks"]["mmlu[n=20]"]["metrics"]["accuracy"]["value"] = 0.9
    path.write_text(json.dumps(data))
    items, note = Baseline.load(path).items("mmlu[n=20]", "accuracy")
    assert items is None and "do not reproduce its stored accuracy 0.9" in note


def test_live_entries_and_default(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(
        json.dumps(
            {
                "format": FORMAT,
                "benchmarks": {"mmlu": {"evaluation_id": "eval_x"}},
                "default": {"job_id": "job_prev"},
            }
        )
    )
    baseline = Baseline.load(path)
    assert is_live(baseline.entry("mmlu") or {})
    assert baseline.entry("humaneval") == {"job_id": "job_prev"}


def _stored(**overrides) -> dict:
    entry = {"metrics": {"exact_match": {"value": 0.9, "stderr": 0.05}}, "num_samples": 20}
    entry.update(overrides)
    return {"format": FORMAT, "benchmarks": {"custom-qa@x": entry}}


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ("{not json", ["cannot read baseline", "fix the JSON"]),
        (json.dumps([1]), ["must be a JSON object"]),
        (json.dumps({"benchmarks": {}}), ['has no "format": add "format": "scaimind-baseline/1"']),
        (
            json.dumps({"format": "scaimind-baseline/2", "benchmarks": {}}),
            ["format 'scaimind-baseline/2' is not 'scaimind-baseline/1'", "re-create it"],
        ),
        (
            json.dumps({"format": FORMAT, "benchmark": {}}),
            ["unknown key(s) 'benchmark'", "keys are format, benchmarks, default"],
        ),
        (
            json.dumps({"format": FORMAT, "benchmarks": {"mmlu": {"value": 1}}}),
            ["entry 'mmlu'", 'must be stored figures {"metrics"', '{"job_id": "job_…"}'],
        ),
        (json.dumps({"format": FORMAT, "default": 3}), ["entry 'default'", '{"job_id": "job_…"}']),
        (
            json.dumps(_stored(metrics={"exact_match": "0.9"})),
            ["entry 'custom-qa@x'", 'is the string "0.9"; write the number 0.9 (no quotes)'],
        ),
        (
            json.dumps(_stored(metrics={"exact_match": {"value": "high"}})),
            ["is the string 'high'; write a number"],
        ),
        (
            json.dumps(_stored(metrics={"exact_match": 95})),
            [
                "metric 'exact_match' is a proportion and must lie in [0, 1], got 95; did you mean 0.95?"
            ],
        ),
        (
            json.dumps(_stored(metrics={"accuracy": -0.1})),
            ["must lie in [0, 1], got -0.1; write it as a share of items"],
        ),
        (
            json.dumps(_stored(metrics={"exact_match": {"value": 0.9, "stderr": -1}})),
            ["stderr of 'exact_match' must be >= 0"],
        ),
        (json.dumps(_stored(metrics={"exact_match": True})), ["must be a finite number, got true"]),
        (
            json.dumps(_stored(metrics={"exact_match": float("nan")})),
            ["metric 'exact_match' must be a finite number, got NaN"],
        ),
        (
            json.dumps(_stored(metrics={"exact_match": {"value": 0.9, "err": 1}})),
            ['must be a number or {"value": …, "stderr": …}'],
        ),
        (json.dumps(_stored(metrics={})), ["'metrics' is empty"]),
        (
            json.dumps(_stored(num_samples="20")),
            ["num_samples must be an integer >= 1, got '20'; write the number 20"],
        ),
        (
            json.dumps(_stored(num_sample=20)),
            ["unknown key(s) 'num_sample'", "a stored entry's keys are"],
        ),
        (json.dumps(_stored(metric="f1")), ["'metric' 'f1' is not one of its metrics"]),
        (
            json.dumps({"format": FORMAT, "benchmarks": {"m": {"evaluation_id": ""}}}),
            ["entry 'm'", "evaluation_id must be a non-empty string"],
        ),
        (
            json.dumps({"format": FORMAT, "benchmarks": {"m": {"job_id": "j", "since": 3}}}),
            ["unknown key(s) 'since' in a live entry"],
        ),
        (
            json.dumps(_stored(discordance={"rate": 1.5})),
            ["discordance rate must lie in [0, 1]"],
        ),
        (
            json.dumps(_stored(items={"blocks": [{"ids": ["a", "b"], "outcomes": "1x"}]})),
            ["per-item outcomes: block 0: an outcome string holds only 0 and 1", "re-create"],
        ),
        (
            json.dumps(
                _stored(
                    items={"blocks": [{"prefix": "q", "first": 0, "count": 3, "outcomes": "10"}]}
                )
            ),
            ["block 0 has 3 ids but 2 outcomes", "delete its 'items'"],
        ),
        (
            json.dumps(
                _stored(
                    items={
                        "blocks": [
                            {"ids": ["q1"], "outcomes": "1"},
                            {"prefix": "q", "first": 0, "count": 2, "outcomes": "10"},
                        ]
                    }
                )
            ),
            ["block 1: item 'q1' appears twice"],
        ),
        (
            json.dumps(_stored(items={"n": 5, "blocks": [{"ids": ["a"], "outcomes": [0.5]}]})),
            ["'n' says 5 items but the blocks hold 1"],
        ),
        (
            json.dumps(_stored(items={"blocks": [{"ids": ["a"], "outcomes": [1.5]}]})),
            ["'outcomes' must be a string of 0/1 or a list of numbers in [0, 1]"],
        ),
        (json.dumps(_stored(items=[1])), ['per-item outcomes: expected {"metric"']),
    ],
)
def test_malformed_files_are_refused_in_one_line_naming_file_entry_and_fix(
    tmp_path, content, fragments
):
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(BaselineError) as info:
        Baseline.load(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_a_declared_non_proportion_may_exceed_one(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(json.dumps(_stored(metrics={"rating": 7.5}, proportions=[])))
    assert stored_value(Baseline.load(path).entry("custom-qa@x") or {}, "rating") == 7.5


_ids = st.one_of(
    st.text(min_size=1, max_size=12),
    st.builds(
        lambda prefix, k: f"{prefix}{k}",
        st.sampled_from(["", "q", "HumanEval/", "a..b/", "0", "x-"]),
        st.sampled_from(["0", "1", "2", "3", "007", "10", "11", "01"]),
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    items=st.dictionaries(
        _ids,
        st.tuples(st.sampled_from([0.0, 1.0, 0.5, 0.25]), st.sampled_from([None, "s1", "s2"])),
        min_size=1,
        max_size=40,
    )
)
def test_encoding_round_trips_any_ids_outcomes_and_clusters(items):
    outcomes = ItemOutcomes(
        {k: v for k, (v, _) in items.items()},
        {k: c for k, (_, c) in items.items() if c is not None},
    )
    block = encode_items(outcomes, "exact_match")
    back = decode_items(json.loads(render({"items": block}))["items"])
    assert back.scores == outcomes.scores
    assert back.clusters == outcomes.clusters


def _mmlu_like(seed: int = 1) -> ItemOutcomes:
    """14,042 items in 57 subjects (MMLU's test split), about 60% right."""
    rng = random.Random(seed)
    sizes = [14042 // 57 + (1 if i < 14042 % 57 else 0) for i in range(57)]
    scores, clusters = {}, {}
    for s, size in enumerate(sizes):
        subject = f"subject_{s:02d}_{'x' * (s % 20)}"
        for i in range(size):
            scores[f"{subject}/{i}"] = float(rng.random() < 0.6)
            clusters[f"{subject}/{i}"] = subject
    return ItemOutcomes(scores, clusters)


def test_full_mmlu_outcomes_stay_small_and_one_line_per_subject(tmp_path):
    outcomes = _mmlu_like()
    assert outcomes.n == 14042
    path = tmp_path / "b.json"
    baseline = Baseline.load(path)
    baseline.bless([_record("mmlu", outcomes.mean)], CONTEXT, {"mmlu": outcomes})
    baseline.save()
    text = path.read_text()
    assert len(text.encode()) < 25_000  # docs/gates.md quotes the figure (about 22 KB)
    assert sum('"prefix"' in line for line in text.splitlines()) == 57
    loaded, note = Baseline.load(path).items("mmlu", "accuracy")
    assert note == "" and loaded == outcomes


def test_render_is_the_json_it_stands_for():
    data = {
        "format": FORMAT,
        "benchmarks": {
            "m": {"items": encode_items(_outcomes(30, 10), "acc"), "metrics": {"acc": 1}}
        },
    }
    assert json.loads(render(data)) == json.loads(json.dumps(data))


def test_save_needs_a_path():
    with pytest.raises(BaselineError, match="needs --scaimind-baseline"):
        Baseline().save()


def test_examples_baseline_is_valid():
    path = Path(__file__).parents[2] / "examples" / "gates" / "baseline.json"
    assert Baseline.load(path).benchmarks
