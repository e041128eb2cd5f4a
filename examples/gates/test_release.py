"""Release gates for the acme assistant; run `pytest --scaimind-job job_demo` in this folder."""

import pytest

from pytest_scaimind import assert_benchmark

SUPPORT = "scaidrive://acme/eval/support-testset.jsonl"
ARITHMETIC = "scaidrive://acme/eval/arithmetic.jsonl"


def test_support_answers():
    assert_benchmark(
        "custom-acme-support",
        dataset=SUPPORT,
        parameters={"max_new_tokens": "64", "temperature": "0.0"},
        min_score=0.8,
    )


def test_arithmetic_does_not_regress():
    assert_benchmark("custom-arithmetic", dataset=ARITHMETIC, max_drop=0.05)


def test_arithmetic_is_confidently_above_chance():
    # judged on the 95% Wilson interval of 20 samples, not on the point value
    assert_benchmark("custom-arithmetic", dataset=ARITHMETIC, min_score=0.5, confidence=0.95)


@pytest.mark.parametrize("floor", [0.6, 0.7])
def test_arithmetic_floors(floor):
    result = assert_benchmark("custom-arithmetic", dataset=ARITHMETIC, min_score=floor)
    assert result.num_samples == 20


def test_tokenizer_round_trip():
    # an ordinary test: runs with or without --scaimind-job
    assert "héllo".encode().decode() == "héllo"
