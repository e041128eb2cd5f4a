"""Collection-time discovery of gates from the AST of collected tests and from markers."""

from __future__ import annotations

import pytest

from pytest_scaimind._collect import Scanner
from pytest_scaimind._evaluations import Serving, plan_batches, request_key, reuse_key
from pytest_scaimind._gates import label, make_gate

SOURCE = """
import pytest
import pytest_scaimind
from pytest_scaimind import assert_benchmark

BENCH = "hellaswag"

def test_literal():
    assert_benchmark("mmlu", min_score=0.6, num_samples=100)
    assert_benchmark("custom-qa", dataset="scaidrive://o/eval/qa.jsonl", parameters={"temperature": "0.0"}, min_score=0.5)

@pytest.mark.parametrize("name", ["arc", "gsm8k"])
def test_param(name):
    assert_benchmark(name, min_score=0.1)

def test_constant():
    pytest_scaimind.assert_benchmark(BENCH, max_drop=0.02)

def test_dynamic():
    for name in ["x", "y"]:
        assert_benchmark(name)

@pytest.mark.scaimind("winogrande", num_samples=5)
def test_marked():
    assert_benchmark(pick())

class TestGroup:
    def test_method(self):
        assert_benchmark("mmlu", min_score=0.7, num_samples=100)

def test_plain():
    assert 1 + 1 == 2

def pick():
    return "winogrande"
"""


def _scan(pytester: pytest.Pytester) -> dict[str, tuple[list[str], bool]]:
    items = pytester.getitems(SOURCE)
    scanner = Scanner()
    found = {}
    for item in items:
        result = scanner.scan(item)
        if result is not None:
            found[item.name] = ([label(g.spec) for g in result.gates], result.dynamic)
    return found


def test_scanner_reads_literals_params_constants_markers_and_methods(pytester):
    found = _scan(pytester)
    assert found["test_literal"] == (
        ["mmlu[n=100]", "custom-qa@scaidrive://o/eval/qa.jsonl{temperature=0.0}"],
        False,
    )
    assert found["test_param[arc]"] == (["arc"], False)
    assert found["test_param[gsm8k]"] == (["gsm8k"], False)
    assert found["test_constant"] == (["hellaswag"], False)
    assert found["test_dynamic"] == ([], True)
    assert found["test_marked"] == (["winogrande[n=5]"], True)
    assert found["test_method"] == (["mmlu[n=100]"], False)
    assert "test_plain" not in found


def test_scanner_rejects_bad_literal_arguments(pytester):
    items = pytester.getitems(
        "from pytest_scaimind import assert_benchmark\n"
        "def test_bad():\n    assert_benchmark('custom-x', min_score=0.5)\n"
    )
    with pytest.raises(ValueError, match="needs a dataset"):
        Scanner().scan(items[0])


def test_a_literal_gate_without_a_criterion_is_refused_but_a_marker_declares_a_spec(pytester):
    items = pytester.getitems(
        "import pytest\n"
        "from pytest_scaimind import assert_benchmark\n"
        "def test_nothing():\n    assert_benchmark('mmlu', num_samples=10)\n"
        "@pytest.mark.scaimind('mmlu', num_samples=10)\n"
        "def test_declared():\n    assert_benchmark(pick(), min_score=0.5)\n"
    )
    with pytest.raises(
        ValueError, match=r"assert_benchmark\('mmlu'\) sets no criterion: pass min_score="
    ):
        Scanner().scan(items[0])
    declared = Scanner().scan(items[1])
    assert declared is not None and declared.dynamic
    assert [label(g.spec) for g in declared.gates] == ["mmlu[n=10]"]


def test_identical_specs_share_and_same_names_split():
    a = make_gate("mmlu", num_samples=10, spec_only=True).spec
    b = make_gate("mmlu", num_samples=10, spec_only=True).spec
    c = make_gate("mmlu", num_samples=20, spec_only=True).spec
    d = make_gate("arc", spec_only=True).spec
    batches = plan_batches([a, d, b, c])
    assert [[label(s) for s in batch] for batch in batches] == [
        ["mmlu[n=10]", "arc"],
        ["mmlu[n=20]"],
    ]


def test_request_key_covers_the_spec_but_not_its_order():
    base = {
        "job_id": "j",
        "model_uri": "m",
        "checkpoint_id": "",
        "benchmarks": [{"name": "a"}, {"name": "b"}],
    }
    same = {**base, "benchmarks": [{"name": "b"}, {"name": "a"}]}
    assert request_key("h", base) == request_key("h", same)
    for change in (
        {"checkpoint_id": "ckpt-1"},
        {"model_uri": "m2"},
        {"job_id": "j2"},
        {"benchmarks": [{"name": "a", "num_samples": 5}, {"name": "b"}]},
        {"benchmarks": [{"name": "a", "parameters": {"t": "1"}}, {"name": "b"}]},
    ):
        assert request_key("h", base) != request_key("h", {**base, **change}), change
    assert request_key("h", base) != request_key("h2", base)


def test_every_benchmark_field_is_part_of_the_reuse_key():
    """A new field on Benchmark must be classified here: it changes what is evaluated, so the key."""
    import dataclasses

    from scaimind_nb import Benchmark

    variants = {
        "name": ("custom-a", "custom-b"),
        "dataset": ("scaidrive://o/a.jsonl", "scaidrive://o/b.jsonl"),
        "num_samples": (10, 20),
        "parameters": ({"temperature": "0.0"}, {"temperature": "0.7"}),
    }
    base = {"name": "custom-a", "dataset": "scaidrive://o/a.jsonl"}
    for field in dataclasses.fields(Benchmark):
        assert field.name in variants, f"classify Benchmark.{field.name} for the reuse key"
        specs = [Benchmark.coerce({**base, field.name: value}) for value in variants[field.name]]
        request_keys = {
            request_key(
                "h",
                {"job_id": "j", "model_uri": "m", "checkpoint_id": "", "benchmarks": [spec]},
            )
            for spec in specs
        }
        reuse_keys = {reuse_key("h", "j", "m", "", Serving(spec)) for spec in specs}
        assert len(request_keys) == 2 == len(reuse_keys), field.name


def _scan_one(pytester: pytest.Pytester, body: str):
    items = pytester.getitems(
        "import pytest\nfrom pytest_scaimind import assert_benchmark\n" + body
    )
    return Scanner().scan(items[0])


def test_a_name_given_by_keyword_is_batched_like_a_positional_one(pytester):
    found = _scan_one(
        pytester,
        "def test_kw():\n    assert_benchmark(name='mmlu', min_score=0.6, num_samples=50)\n",
    )
    assert found is not None and not found.dynamic
    assert [label(g.spec) for g in found.gates] == ["mmlu[n=50]"]
    assert found.gates[0].min_score == 0.6


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("assert_benchmark()", "assert_benchmark needs a benchmark name"),
        ("assert_benchmark(min_score=0.6)", "assert_benchmark needs a benchmark name"),
        ("assert_benchmark('mmlu', 0.6)", "takes only the benchmark name positionally"),
        ("assert_benchmark('mmlu', name='arc')", "takes only the benchmark name positionally"),
        (
            "assert_benchmark('mmlu', metric='accuracy', min_score=60)",
            "min_score=60 is a percentage, but accuracy is a proportion in [0, 1]: did you mean min_score=0.6?",
        ),
        (
            "assert_benchmark('mmlu', metric='exact_match', max_drop=5)",
            "did you mean max_drop=0.05?",
        ),
        (
            "assert_benchmark('mmlu', metric='acc', min_score=250)",
            "min_score=250 can never be met by acc, a proportion in [0, 1]",
        ),
    ],
)
def test_calls_that_cannot_work_are_refused_at_collection(pytester, call, message):
    with pytest.raises(ValueError) as excinfo:
        _scan_one(pytester, f"def test_bad():\n    {call}\n")
    assert message in str(excinfo.value)


def test_a_marker_without_a_name_is_refused(pytester):
    with pytest.raises(ValueError, match=r"@pytest\.mark\.scaimind needs a benchmark name"):
        _scan_one(pytester, "@pytest.mark.scaimind(num_samples=5)\ndef test_m():\n    pass\n")


def test_percent_thresholds_on_metrics_not_known_as_proportions_wait_for_the_result(pytester):
    # a metric named like a score of its own (perplexity, bleu) may exceed 1: nothing to refuse yet
    found = _scan_one(
        pytester, "def test_ok():\n    assert_benchmark('mmlu', metric='bleu', min_score=30)\n"
    )
    assert found is not None and found.gates[0].min_score == 30
