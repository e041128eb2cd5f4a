"""Report rendering: the terminal table, the Markdown checklist, JSON and JUnit properties."""

from __future__ import annotations

import json

from pytest_scaimind import _report
from pytest_scaimind._record import GateRecord

RECORDS_JSON = [
    {
        "test": "t.py::test_a",
        "benchmark": "mmlu[n=20]",
        "metric": "accuracy",
        "score": 0.65,
        "threshold": 0.6,
        "baseline": None,
        "delta": 0.05,
        "n": 20,
        "spec": {"name": "mmlu", "num_samples": 20},
        "verdict": "pass",
        "action": "pass",
        "message": "mmlu[n=20] accuracy 0.6500 >= 0.6000",
        "evaluation_id": "eval_1",
        "job_id": "job_1",
        "model_uri": "scaidrive://m",
        "checkpoint_id": "",
        "host": "http://h",
    },
    {
        "test": "t.py::test_b",
        "benchmark": "arc",
        "metric": "acc",
        "score": 0.4,
        "threshold": 0.5,
        "baseline": 0.52,
        "delta": -0.12,
        "n": 20,
        "spec": {"name": "arc"},
        "verdict": "inconclusive",
        "action": "skip",
        "message": "arc acc inconclusive",
        "evaluation_id": "eval_1",
        "job_id": "job_1",
        "model_uri": "scaidrive://m",
        "checkpoint_id": "",
        "host": "http://h",
    },
]
RECORDS = [GateRecord.from_json(r) for r in RECORDS_JSON]


def test_table_is_aligned_one_row_per_gate():
    lines = _report.table(RECORDS)
    assert len(lines) == 3
    assert lines[0].split() == [
        "test",
        "benchmark",
        "metric",
        "score",
        "threshold",
        "baseline",
        "delta",
        "n",
        "verdict",
    ]
    assert lines[1].index("mmlu") == lines[0].index("benchmark")
    assert "+0.0500" in lines[1] and "PASS" in lines[1]
    assert "INCONCLUSIVE (skip)" in lines[2] and "0.5200" in lines[2]


def test_markdown_checklist_and_facts(tmp_path):
    facts = _report.context(RECORDS, {})
    text = _report.markdown(RECORDS, facts)
    assert "1/2 passed" in text
    assert "- [x] **mmlu[n=20]**" in text and "- [ ] **arc**" in text
    for fact in ("`job_1`", "`scaidrive://m`", "(final)", "`eval_1`", "http://h"):
        assert fact in text
    md = _report.write(tmp_path / "r.md", RECORDS, facts)
    assert md.read_text() == text
    data = json.loads(_report.write(tmp_path / "r.json", RECORDS, facts).read_text())
    assert data["evaluation_ids"] == ["eval_1"] and len(data["gates"]) == 2


def test_properties_round_trip_through_the_report_channel():
    props = RECORDS[0].to_properties()
    names = [k for k, _ in props]
    assert {
        "scaimind_benchmark",
        "scaimind_score",
        "scaimind_threshold",
        "scaimind_verdict",
        "scaimind_evaluation_id",
    } <= set(names)
    assert "scaimind_baseline" not in names
    assert GateRecord.from_properties([("other", "x"), *props]) == [RECORDS[0]]
    assert RECORDS[0].to_json()["verdict"] == "pass"  # enums travel as their values
