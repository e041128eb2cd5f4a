"""Per-item drill-down on a real coordinator: samples(), diff() and compare's paired Δ."""

from __future__ import annotations

from typing import Any

import pytest

import scaimind_nb
from scaimind_nb import SamplesNotAvailableError, stats


@pytest.fixture
def runs(checkpoints: Any, nb_client: Any) -> list[scaimind_nb.EvaluationRun]:
    """step-1 and step-2 evaluated on the same 9 items, finished."""
    return [
        scaimind_nb.evaluate(
            checkpoints.job_id,
            uri,
            [checkpoints.benchmark],
            checkpoint_id=step,
            progress="off",
            client=nb_client,
            poll_interval=0.05,
        )
        for step, uri in checkpoints.models.items()
    ]


def test_samples_is_the_per_item_frame(runs: list[Any], checkpoints: Any) -> None:
    frame = scaimind_nb.samples(runs[0])
    assert list(frame.columns) == [
        "evaluation_id",
        "benchmark",
        "item_id",
        "score",
        "correct",
        "cluster",
        "prompt",
        "answer",
        "reference",
        "record",
    ]
    assert len(frame) == 9 and set(frame["evaluation_id"]) == {runs[0].evaluation_id}
    assert set(frame.loc[frame["correct"], "item_id"]) == checkpoints.right["step-1"]
    assert str(frame["correct"].dtype) == "boolean" and str(frame["score"].dtype) == "Float64"
    first = frame.set_index("item_id").loc["1"]
    assert (first["prompt"], first["answer"], first["reference"]) == ("0+0=", "0", "0")
    wrong = frame.set_index("item_id").loc["9"]
    assert (wrong["answer"], wrong["reference"], wrong["correct"]) == ("?", "4", False)
    assert wrong["record"]["completion"] == "?"  # everything stored stays in `record`


def test_diff_lists_the_items_whose_outcome_changed(runs: list[Any], checkpoints: Any) -> None:
    changed = scaimind_nb.diff(runs[0], runs[1])
    broken = checkpoints.right["step-1"] - checkpoints.right["step-2"]
    fixed = checkpoints.right["step-2"] - checkpoints.right["step-1"]
    assert list(changed["item_id"]) == sorted(broken) + sorted(fixed, key=int)
    assert set(changed.loc[changed["change"] == "broken", "item_id"]) == broken
    assert set(changed.loc[changed["change"] == "fixed", "item_id"]) == fixed
    row = changed.set_index("item_id").loc["9"]
    assert (row["prompt"], row["answer_a"], row["answer_b"], row["reference"]) == (
        "2+2=",
        "?",
        "4",
        "4",
    )
    assert (row["score_a"], row["score_b"]) == (0.0, 1.0)
    assert changed.attrs == {
        "a": "step-1",
        "b": "step-2",
        "benchmark": checkpoints.benchmark["name"],
        "compared": 9,
        "only_a": 0,
        "only_b": 0,
    }
    again = scaimind_nb.diff(runs[0].evaluation_id, runs[1].evaluation_id, client=runs[0].client)
    assert list(again["item_id"]) == list(changed["item_id"])
    with pytest.raises(KeyError, match="they share: custom-arith-"):
        scaimind_nb.diff(runs[0], runs[1], "mmlu")


def test_compare_pairs_on_per_item_outcomes(runs: list[Any], checkpoints: Any) -> None:
    table = scaimind_nb.compare(runs)
    row = table.stats.set_index("evaluation").loc["step-2"]
    a = stats.ItemOutcomes.from_mapping(
        {str(i): str(i) in checkpoints.right["step-1"] for i in range(1, 10)}
    )
    b = stats.ItemOutcomes.from_mapping(
        {str(i): str(i) in checkpoints.right["step-2"] for i in range(1, 10)}
    )
    expected = stats.paired_difference(a, b, 0.95)
    assert bool(row["paired"]) and row["delta_method"] == "paired newcombe"
    assert (row["delta"], row["delta_low"], row["delta_high"]) == (
        expected.delta,
        expected.interval.low,
        expected.interval.high,
    )
    assert "paired" in repr(table) and "unpaired" not in repr(table)


def test_without_per_item_records_compare_is_unpaired_and_says_so(
    scripted: Any, record: Any
) -> None:
    for eid, score in (("eval_a", 0.5), ("eval_b", 0.75)):
        scripted.script(
            eid,
            record(
                "COMPLETED",
                evaluation_id=eid,
                results={"qa": {"exact_match": score}},
                num_samples=40,
            ),
        )
    evs = [scripted.client.get("eval_a"), scripted.client.get("eval_b")]
    with pytest.raises(SamplesNotAvailableError):
        scaimind_nb.samples("eval_a", client=scripted.client)
    table = scaimind_nb.compare(evs, client=scripted.client)
    row = table.stats.set_index("evaluation_id").loc["eval_b"]
    assert not bool(row["paired"]) and row["delta_method"] == "unpaired newcombe"


def test_per_item_records_of_ended_evaluations_are_fetched_once(runs: list[Any]) -> None:
    first = [scaimind_nb.samples(run) for run in runs]
    calls: list[str] = []
    client = runs[0].client
    original = client.samples

    def counting(evaluation_id: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(evaluation_id)
        return original(evaluation_id, *args, **kwargs)

    client.samples = counting  # type: ignore[method-assign]
    try:
        assert scaimind_nb.samples(runs[0]).equals(first[0])
        scaimind_nb.compare(runs)
        scaimind_nb.diff(runs[0], runs[1])
    finally:
        del client.samples
    assert calls == []


def test_bad_inputs_are_clear(nb_client: Any) -> None:
    with pytest.raises(scaimind_nb.ScaimindValueError, match="expected an EvaluationRun"):
        scaimind_nb.samples(42, client=nb_client)
    with pytest.raises(scaimind_nb.NotFoundError):
        scaimind_nb.samples("eval_nope", client=nb_client)
