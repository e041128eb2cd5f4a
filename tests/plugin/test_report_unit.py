"""Report rendering: the fitted terminal table, the Markdown checklist, the JSON report and its schema."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from hypothesis import given, settings, strategies as st

from pytest_scaimind import _report, _table
from pytest_scaimind._compare import Comparison, Row, Then, compare
from pytest_scaimind._record import Action, GateRecord, Outcome

HOST = _report.Coordinator(
    "https://scaigrid.example", "https://scaigrid.example", "https://scaigrid.example"
)
LONG_DATASET = "scaidrive://acme/eval/a-rather-long-folder-name/support-testset-2026-11.jsonl"


def record(**changes) -> GateRecord:
    base = GateRecord(
        test="tests/gates/test_release.py::test_support",
        benchmark="custom-support@" + LONG_DATASET + "{max_new_tokens=256,temperature=0.0}",
        spec={"name": "custom-support", "dataset": LONG_DATASET},
        verdict=Outcome.PASS,
        action=Action.PASS,
        message="custom-support exact_match 0.9000 >= 0.8000",
        criteria={"min_score": 0.8},
        metric="exact_match",
        score=0.9,
        threshold=0.8,
        n=10,
        evaluation_id="eval_1",
        job_id="job_1",
        model_uri="scaidrive://acme/models/m",
        host=HOST.host,
        index=0,
        outcome="passed",
        proportion=True,
    )
    return dataclasses.replace(base, **changes)


RECORDS = [
    record(),
    record(
        test="tests/gates/test_release.py::test_arithmetic_does_not_regress_against_the_last_release",
        benchmark="custom-arithmetic@scaidrive://acme/eval/arithmetic.jsonl",
        spec={"name": "custom-arithmetic", "dataset": "scaidrive://acme/eval/arithmetic.jsonl"},
        verdict=Outcome.FAIL,
        action=Action.FAIL,
        criteria={"max_drop": 0.05},
        score=0.8,
        threshold=0.85,
        baseline=0.9,
        n=20,
        index=1,
        outcome="failed",
        baseline_source={"kind": "stored", "file": "baseline.json", "entry": "custom-arithmetic"},
    ),
    record(
        test="tests/gates/test_release.py::test_floors[0.95]",
        verdict=Outcome.INCONCLUSIVE,
        action=Action.PASS,
        criteria={"min_score": 0.85, "confidence": 0.95},
        confidence=0.95,
        ci_low=0.596,
        ci_high=0.982,
        method="wilson",
        n_needed=2378,
        threshold=0.85,
        index=2,
    ),
    record(
        test="tests/gates/test_release.py::test_mmlu",
        benchmark="mmlu[n=1000]",
        spec={"name": "mmlu", "num_samples": 1000},
        verdict=Outcome.ERROR,
        action=Action.ERROR,
        message="evaluation eval_2 ended FAILED: GPU fell off the bus",
        criteria={"min_score": 0.6},
        metric=None,
        score=None,
        threshold=None,
        n=None,
        evaluation_id="eval_2",
        index=3,
        outcome="error",
    ),
]


PAIRED = record(
    test="tests/gates/test_release.py::test_support_holds",
    verdict=Outcome.FAIL,
    action=Action.FAIL,
    criteria={"max_drop": 0.02, "confidence": 0.95},
    confidence=0.95,
    score=0.73,
    threshold=0.78,
    baseline=0.8,
    n=200,
    ci_low=0.6646,
    ci_high=0.7872,
    method="paired newcombe",
    paired=True,
    delta_ci_low=-0.1075,
    delta_ci_high=-0.0347,
    worse=14,
    better=0,
    margin=0.02,
    p_value=0.9999,
    correction="holm",
    family_size=12,
    baseline_source={"kind": "stored", "file": "baseline.json", "entry": "custom-support"},
    index=4,
    outcome="failed",
)
STATISTICS = {
    "correction": "holm",
    "confidence_checks": 12,
    "family_wise_error": "family-wise error: at most 5% across the session's 12 confidence "
    "checks (--scaimind-correction=holm, Holm-Bonferroni)",
    "power_warnings": ["custom-support n=20: max_drop 0.02 cannot be told from noise; raise n"],
}


def run(records=RECORDS, **changes) -> _report.Run:
    base = _report.Run(
        run_id="20261201T160807Z-a1b2c3",
        generated_at="2026-12-01T16:08:07Z",
        job_id="job_1",
        model_uri="scaidrive://acme/models/m",
        checkpoint_id="",
        coordinator=HOST,
        records=list(records),
        provenance={
            "git": {"commit": "0123456789abcdef", "branch": "main", "dirty": True},
            "versions": {"scaimind_nb": "0.1.0", "pytest": "9.0.3", "python": "3.11.7"},
            "platform": "Linux-x86_64",
        },
    )
    return dataclasses.replace(base, **changes)


# -- the terminal table -----------------------------------------------------------------------


@pytest.mark.parametrize("width", [60, 80, 100, 132])
def test_terminal_summary_fits_the_width_and_keeps_every_gate(width):
    lines = _report.terminal(run(), width)
    assert max(len(line) for line in lines) <= width, "\n".join(lines)
    header = lines[0].split()
    assert header[0] == "test" and header[-1] in ("verdict", "evaluation")
    assert len(lines) >= 1 + len(RECORDS)
    verdicts = [line for line in lines[1:5]]
    for line, word in zip(verdicts, ("PASS", "FAIL", "INCONCLUSIVE", "ERROR"), strict=True):
        assert word in line


def test_terminal_abbreviates_labels_into_tags_and_explains_them_below():
    lines = _report.terminal(run(), 80)
    assert lines[0].split()[:2] == ["test", "bench"]
    legend = [line for line in lines if re.match(r"b\d ", line)]
    assert legend[0].startswith("b1 custom-support@support-testset-2026-")  # no dataset folders
    assert legend[0].endswith("temperature=0.0}") and len(legend[0]) <= 80
    assert "b2 custom-arithmetic@arithmetic.jsonl" in legend
    assert "tests in tests/gates/test_release.py" in "\n".join(lines)
    # the distinguishing end of a long test id survives the cut
    assert any("[0.95]" in line for line in lines[1:5])
    assert "e1 eval_1" in "\n".join(lines) and "e2 eval_2" in "\n".join(lines)


def test_terminal_in_full_with_verbose_keeps_every_label_and_column():
    lines = _report.terminal(run(), 80, full=True)
    text = "\n".join(lines)
    for r in RECORDS:
        assert r.test in text and r.benchmark in text
    for title in ("metric", "interval", "threshold", "baseline", "Δ thr", "Δ base", "evaluation"):
        assert title in lines[0]
    assert "INCONCLUSIVE (pass)" in text


def test_terminal_keeps_delta_vs_threshold_and_vs_baseline_apart():
    lines = _report.terminal(run(), 132)
    header = lines[0]
    row = lines[2]  # the max_drop gate: score 0.80, threshold 0.85, baseline 0.90
    thr = header.index("Δ thr") + len("Δ thr")  # numbers are right-aligned under their title
    base = header.index("Δ base") + len("Δ base")
    assert row[thr - 7 : thr] == "-0.0500"
    assert row[base - 7 : base] == "-0.1000"
    assert "Δ thr = score - threshold" in "\n".join(lines)


def test_terminal_facts_name_the_embedded_coordinator_by_its_db_not_a_port():
    local = _report.Coordinator(
        "local",
        "local (embedded, db .pytest_cache/d/scaimind-local/coordinator.sqlite, drive drive)",
        None,
        {"db": ".pytest_cache/d/scaimind-local/coordinator.sqlite", "drive": "drive"},
    )
    text = "\n".join(_report.terminal(run(coordinator=local), 80))
    assert "coordinator local (embedded)" in text
    assert "db .pytest_cache/d/scaimind-local/coordinator.sqlite" in text
    assert "127.0.0.1" not in text


@settings(max_examples=200, deadline=None)
@given(
    cells=st.lists(
        st.tuples(st.text(min_size=0, max_size=60), st.text(min_size=0, max_size=90)),
        min_size=1,
        max_size=6,
    ),
    width=st.integers(min_value=40, max_value=140),
)
def test_fitted_tables_never_exceed_the_width_when_they_can_fit(cells, width):
    cells = [(a.replace("\n", " "), b.replace("\n", " ")) for a, b in cells]
    columns = [
        _table.Column("test", [a for a, _ in cells], flex=True),
        _table.Column("benchmark", [b for _, b in cells], flex=True, drop=1),
        _table.Column("score", ["0.9000"] * len(cells), right=True),
    ]
    table = _table.render(columns, width)
    assert all(len(line) <= width for line in table.lines)
    assert len(table.lines) == 1 + len(cells)


def test_cut_keeps_both_ends_and_wrap_never_splits_a_part():
    assert _table.cut("test_arithmetic_floors[0.6]", 15) == "test_ar…rs[0.6]"
    assert len(_table.cut("x" * 100, 9)) == 9
    assert _table.wrap(["a" * 50, "b" * 50, "c"], 80) == ["a" * 50, "b" * 50 + ", c"]
    assert _table.wrap(["x" * 120], 80) == ["x" * 120]


# -- the Markdown checklist -------------------------------------------------------------------


def test_checklist_names_test_criterion_and_verdict_once_per_gate():
    text = _report.markdown(run())
    boxes = [line for line in text.splitlines() if line.startswith("- [")]
    assert len(boxes) == len(RECORDS)
    first = boxes[0]
    assert first.startswith("- [x] `tests/gates/test_release.py::test_support` on ")
    assert first.count("custom-support") == 1 and first.count("PASS") == 1
    assert "exact_match ≥ 0.8000 (min_score=0.8)" in first
    assert "exact_match ≥ 0.8500 (max_drop=0.05 vs baseline 0.9000)" in boxes[1]
    assert "Δ vs threshold -0.0500, Δ vs baseline -0.1000" in boxes[1]
    assert "95% interval of exact_match above 0.8500 (min_score=0.85, confidence=0.95)" in boxes[2]
    assert "need n≈2,378 to decide" in boxes[2]
    assert boxes[3].startswith("- [ ]") and "**ERROR**: evaluation eval\\_2" not in boxes[3]
    assert "GPU fell off the bus" in boxes[3]


def test_checklist_counts_agree_with_pytest():
    text = _report.markdown(run())
    # the inconclusive gate pytest passed is checked and counted as passed, and says what it was
    assert text.startswith(
        "## Model release gates: 2 of 4 passed (1 failed, 1 error, 1 inconclusive)"
    )
    assert "- [x] `tests/gates/test_release.py::test_floors[0.95]`" in text
    assert "**PASS** (inconclusive)" in text
    # a gate that passed in a test pytest then failed is not checked, and counts as failed
    late = [dataclasses.replace(RECORDS[0], outcome="failed")]
    late_text = _report.markdown(run(late))
    assert "0 of 1 passed (1 failed)" in late_text
    assert "- [ ]" in late_text and "but pytest reports the test failed" in late_text


def test_checklist_has_columns_links_provenance_and_the_comparison():
    comparison = Comparison(
        {"ref": "-1", "kind": "history", "label": "history run 20261130T000000Z-000000"},
        [
            Row(
                "tests/gates/test_release.py::test_support",
                RECORDS[0].benchmark,
                "exact_match",
                0.95,
                0.9,
                -0.05,
                -0.2,
                0.1,
                0.95,
                "paired newcombe",
                True,
                "no clear change",
                "pass",
                "pass",
            )
        ],
    )
    text = _report.markdown(run(comparison=comparison))
    header = next(line for line in text.splitlines() if line.startswith("| # |"))
    for title in (
        "score",
        "interval",
        "method",
        "threshold",
        "baseline",
        "Δ vs threshold",
        "Δ vs baseline",
        "n",
        "verdict",
        "evaluation",
    ):
        assert f"| {title} |" in header
    assert "[record](https://scaigrid.example/v1/modules/scaimind/evaluations/eval_1)" in text
    assert (
        "[samples](https://scaigrid.example/v1/modules/scaimind/evaluations/eval_1/samples)" in text
    )
    assert "- model: `scaidrive://acme/models/m`, digest not recorded" in text
    assert "- git: `0123456789abcdef` on `main`, dirty" in text
    assert "- versions: scaimind-nb 0.1.0, pytest 9.0.3, Python 3.11.7" in text
    assert "### Compared with history run 20261130T000000Z-000000" in text
    assert (
        "| 0.9500 | 0.9000 | -0.0500 | [-0.2000, +0.1000] | paired newcombe | no clear change | PASS → PASS |"
        in text
    )


def test_checklist_shows_how_a_confidence_regression_gate_was_decided():
    text = _report.markdown(run([*RECORDS, PAIRED], statistics=STATISTICS))
    box = next(line for line in text.splitlines() if "test_support_holds" in line)
    assert (
        "Δ vs baseline -0.0700 in [-0.1075, -0.0347] (paired newcombe, 14 worse / 0 better)" in box
    )
    assert "interval [0.6646, 0.7872], Δ" in box  # the method belongs to Δ here, not the score
    assert "Holm over 12 checks" in box
    wilson = next(line for line in text.splitlines() if "test_floors[0.95]" in line)
    assert "interval [0.5960, 0.9820] (wilson)" in wilson
    header = next(line for line in text.splitlines() if line.startswith("| # |"))
    assert "| Δ vs baseline | Δ interval | method | discordant |" in header
    row = next(line for line in text.splitlines() if line.startswith("| 5 |"))
    assert "| [-0.1075, -0.0347] | paired newcombe | 14 worse / 0 better |" in row
    assert "| p_value |" not in header and "| infra |" not in header  # in the JSON only
    section = text[text.index("### Verdict statistics") : text.index("### Evaluations")]
    assert "- power: custom-support n=20: max_drop 0.02 cannot be told from noise" in section
    assert "- family-wise error: at most 5% across the session's 12 confidence checks" in section
    full = "\n".join(_report.terminal(run([*RECORDS, PAIRED]), 80, full=True))
    assert "Δ interval" in full and "paired newcombe" in full
    assert "### Verdict statistics" not in _report.markdown(run())  # nothing to say: no section


def test_checklist_shows_digests_where_the_coordinator_recorded_them():
    digested = [
        dataclasses.replace(
            RECORDS[0],
            model_digest="sha256:" + "a" * 64,
            data={"digest": "sha256:" + "b" * 64, "records": 10, "source": LONG_DATASET},
        )
    ]
    text = _report.markdown(run(digested))
    assert f"digest `sha256:{'a' * 64}`" in text
    assert f"`sha256:{'b' * 64}` (10 records, {LONG_DATASET})" in text


def test_hostile_test_ids_cannot_break_the_markdown():
    nasty = "t.py::test_x[a|b`c*<script>alert(1)</script>]"
    text = _report.markdown(run([record(test=nasty, message="bad | ` * <b>x</b>\nnext")]))
    box = next(line for line in text.splitlines() if line.startswith("- ["))
    assert "``t.py::test_x[a|b`c*<script>alert(1)</script>]``" in box  # one code span
    row = next(line for line in text.splitlines() if line.startswith("| 1 |"))
    assert row.count(" | ") == text.splitlines()[text.splitlines().index(row) - 2].count(" | ")
    assert "a\\|b" in row  # the pipe cannot end the cell
    assert "<b>" not in text and "\nnext" not in text.replace("\n- ", "")


def test_links_quote_evaluation_ids():
    links = HOST.links("eval_../x?y")
    assert links["record"].endswith("/evaluations/eval_..%2Fx%3Fy")


# -- the JSON report and its schema -----------------------------------------------------------


def test_json_report_validates_against_the_shipped_schema():
    import jsonschema

    schema = json.loads(_report.SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    comparison = Comparison(
        {"ref": "eval_0", "kind": "evaluation", "label": "evaluation eval_0"},
        compare(RECORDS, lambda r: Then(0.85, 10, None, True, "eval_0"), lambda r: None),
    )
    data = json.loads(
        json.dumps(run([*RECORDS, PAIRED], comparison=comparison, statistics=STATISTICS).to_json())
    )
    jsonschema.validate(data, schema)
    assert data["format"] == "scaimind-report/1"
    assert data["summary"] == {
        "gates": 5,
        "passed": 2,
        "failed": 2,
        "errors": 1,
        "skipped": 0,
        "inconclusive": 1,
    }
    gates = data["gates"]
    assert [g["index"] for g in gates] == [0, 1, 2, 3, 4]
    assert gates[1]["criteria"] == {"max_drop": 0.05}
    assert gates[1]["baseline_source"]["file"] == "baseline.json"
    assert gates[2]["method"] == "wilson"
    assert gates[1]["delta_vs_threshold"] == pytest.approx(-0.05)
    assert gates[1]["delta_vs_baseline"] == pytest.approx(-0.1)
    assert gates[3]["evaluation_id"] == "eval_2" and gates[3]["status"] == "error"
    assert (gates[4]["delta_ci_low"], gates[4]["worse"], gates[4]["family_size"]) == (
        -0.1075,
        14,
        12,
    )
    assert data["statistics"] == STATISTICS
    # an invalid report is refused: the schema is not a rubber stamp
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**data, "format": "scaimind-report/2"}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**data, "gates": [{**gates[0], "verdict": "maybe"}]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**data, "gates": [{**gates[4], "worse": "14"}]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {**data, "statistics": {**STATISTICS, "correction": "bonferroni"}}, schema
        )
    with pytest.raises(jsonschema.ValidationError):  # the schema knows every field a gate carries
        jsonschema.validate(
            {**data, "gates": [{k: v for k, v in gates[4].items() if k != "method"}]}, schema
        )


def test_records_are_reported_in_collection_order():
    shuffled = [RECORDS[2], RECORDS[0], RECORDS[3], RECORDS[1]]
    assert [r.index for r in run(shuffled).records] == [0, 1, 2, 3]


def test_write_picks_the_format_from_the_suffix(tmp_path):
    the_run = run()
    assert _report.write(tmp_path / "r.md", the_run).read_text() == _report.markdown(the_run)
    data = json.loads(_report.write(tmp_path / "sub" / "r.json", the_run).read_text())
    assert data["run_id"] == the_run.run_id


def test_properties_round_trip_through_the_report_channel():
    props = RECORDS[1].to_properties()
    names = [k for k, _ in props]
    assert {
        "scaimind_benchmark",
        "scaimind_score",
        "scaimind_threshold",
        "scaimind_baseline",
        "scaimind_verdict",
        "scaimind_evaluation_id",
    } <= set(names)
    assert GateRecord.from_properties([("other", "x"), *props]) == [RECORDS[1]]
    assert RECORDS[1].to_json()["verdict"] == "fail"  # enums travel as their values


def test_fields_other_areas_add_show_up_as_columns():
    @dataclasses.dataclass
    class Extended(GateRecord):
        discordant: str | None = None

    extended = Extended(
        **{f.name: getattr(RECORDS[0], f.name) for f in dataclasses.fields(GateRecord)}
    )
    extended.discordant = "3 worse / 1 better"
    import pytest_scaimind._report as report_module

    original = report_module.GateRecord
    report_module.GateRecord = Extended  # type: ignore[misc]
    try:
        text = _report.markdown(run([extended]))
        full = "\n".join(_report.terminal(run([extended]), 200, full=True))
    finally:
        report_module.GateRecord = original  # type: ignore[misc]
    assert "| discordant |" in text and "3 worse / 1 better" in text
    assert "discordant" in full


# -- the comparison ---------------------------------------------------------------------------


def test_comparison_pairs_items_when_both_sides_have_them():
    from scaimind_nb.stats import ItemOutcomes

    then_items = ItemOutcomes.from_mapping({f"i{k}": k < 18 for k in range(20)})
    now_items = ItemOutcomes.from_mapping({f"i{k}": k < 16 for k in range(20)})
    rows = compare(
        [record(score=0.8)],
        lambda r: Then(0.9, 20, None, True, "eval_then", items=then_items),
        lambda r: now_items if r.evaluation_id == "eval_1" else None,
    )
    [row] = rows
    assert row.paired is True and row.method.startswith("paired")
    assert row.delta == pytest.approx(-0.1)
    assert row.note == "2 worse / 0 better of 20 paired items"
    assert row.low < row.delta < row.high
    unpaired = compare(
        [record(score=0.8)], lambda r: Then(0.9, 20, None, True, "eval_gone"), lambda r: now_items
    )
    assert unpaired[0].paired is False and unpaired[0].method == "unpaired newcombe"


def test_comparison_says_same_evaluation_and_not_in_the_reference():
    same, missing = compare(
        [record(), record(test="t.py::test_other", benchmark="arc")],
        lambda r: Then(0.9, 10, None, True, "eval_1") if r.benchmark != "arc" else None,
        lambda r: None,
    )
    assert same.change == "same" and same.note == "the same evaluation"
    assert missing.change == "not compared" and missing.note == "not in the reference"


@pytest.mark.parametrize(
    ("then", "change"),
    [(0.40, "better"), (0.99, "worse"), (0.88, "no clear change")],
)
def test_comparison_change_follows_the_interval(then, change):
    [row] = compare(
        [record(score=0.9, n=200, evaluation_id="eval_now")],
        lambda r: Then(then, 200, None, True, "eval_then"),
        lambda r: None,
    )
    assert row.change == change


@pytest.mark.parametrize(
    ("host", "shown"),
    [
        ("https://ci:s3cret@scaigrid.example/api", "https://scaigrid.example/api"),
        ("https://scaigrid.example?token=abc#x", "https://scaigrid.example"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("(SCAIGRID_HOST unset)", "(SCAIGRID_HOST unset)"),
    ],
)
def test_reports_name_a_host_without_its_credentials(host, shown):
    from pytest_scaimind._reporting import without_credentials

    assert without_credentials(host) == shown
