"""The baseline file: format checks, lookup, live entries and the bless step."""

from __future__ import annotations

import json

import pytest

from pytest_scaimind._baseline import Baseline, BaselineError, is_live, stored_value
from pytest_scaimind._record import Action, GateRecord, Outcome


def test_missing_file_is_empty_and_hints_how_to_create(tmp_path):
    baseline = Baseline.load(tmp_path / "b.json")
    assert baseline.entry("mmlu") is None
    assert "--scaimind-update-baseline" in baseline.missing_hint("mmlu")
    assert "--scaimind-baseline=PATH" in Baseline.load(None).missing_hint("mmlu")


def test_bless_then_load_round_trip(tmp_path):
    path = tmp_path / "b.json"
    baseline = Baseline.load(path)
    record = GateRecord(
        test="t.py::test_mmlu",
        benchmark="mmlu[n=20]",
        spec={"name": "mmlu", "num_samples": 20},
        verdict=Outcome.PASS,
        action=Action.PASS,
        message="ok",
        metric="accuracy",
        score=0.65,
        metrics={"accuracy": 0.65, "acc_norm": 0.6},
        stderr={"accuracy": 0.1},
        n=20,
        evaluation_id="eval_1",
    )
    baseline.bless([record], {"job_id": "job_1", "model_uri": "scaidrive://m", "checkpoint_id": ""})
    baseline.save()
    data = json.loads(path.read_text())
    assert data["format"] == "scaimind-baseline/1"
    entry = data["benchmarks"]["mmlu[n=20]"]
    assert entry["metrics"]["accuracy"] == {"value": 0.65, "stderr": 0.1}
    assert entry["source"]["evaluation_id"] == "eval_1" and entry["source"]["job_id"] == "job_1"
    again = Baseline.load(path)
    assert stored_value(again.entry("mmlu[n=20]") or {}, "Accuracy") == 0.65
    assert stored_value(again.entry("mmlu[n=20]") or {}, "f1") is None


def test_live_entries_and_default(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(
        json.dumps(
            {"benchmarks": {"mmlu": {"evaluation_id": "eval_x"}}, "default": {"job_id": "job_prev"}}
        )
    )
    baseline = Baseline.load(path)
    assert is_live(baseline.entry("mmlu") or {})
    assert baseline.entry("humaneval") == {"job_id": "job_prev"}


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        json.dumps([1]),
        json.dumps({"benchmarks": {"mmlu": {"value": 1}}}),
        json.dumps({"default": 3}),
    ],
)
def test_malformed_files_are_clear_errors(tmp_path, content):
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(BaselineError, match=str(path).replace("\\", "\\\\")):
        Baseline.load(path)
