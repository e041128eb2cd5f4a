"""compare's statistics, the styled view, pass/fail, the display limit and the plot, on real records."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from scaimind_nb import ScaimindKeyError, ScaimindValueError, compare, stats
from scaimind_nb._display import BAD, OK
from scaimind_nb._views import ComparisonFrame, limited, pass_fail, styled


@pytest.fixture
def two_checkpoints(make_eval: Any) -> list[Any]:
    return [
        make_eval(
            "COMPLETED",
            evaluation_id="eval_a",
            checkpoint_id="step-100",
            results={"mmlu": {"accuracy": 0.5}, "qa": {"exact_match": 0.25}},
            num_samples=400,
        ),
        make_eval(
            "COMPLETED",
            evaluation_id="eval_b",
            checkpoint_id="step-200",
            results={"mmlu": {"accuracy": 0.7}, "qa": {"exact_match": 0.26}},
            num_samples=400,
        ),
    ]


def test_compare_keeps_scores_as_values_and_adds_n_intervals_and_delta(
    two_checkpoints: list[Any],
) -> None:
    table = compare(two_checkpoints)
    assert isinstance(table, ComparisonFrame)
    assert list(table.columns) == ["step-100", "step-200"] and list(table.index) == ["mmlu", "qa"]
    assert table.loc["mmlu", "step-200"] == 0.7 and table.loc["mmlu"].idxmax() == "step-200"
    assert type(table.loc[["mmlu"]]) is pd.DataFrame  # operations give plain frames
    row = table.stats.set_index(["benchmark", "evaluation"]).loc[("mmlu", "step-200")]
    wilson = stats.wilson_interval(0.7, 400, 0.95)
    assert (row["n"], row["ci_low"], row["ci_high"]) == (400, wilson.low, wilson.high)
    assert row["ci_method"] == "wilson" and row["metric"] == "accuracy"
    # Δ to the baseline (the first) as the gates compute it: unpaired without per-item data
    expected = stats.difference(0.5, 0.7, 0.95, n_baseline=400, n_candidate=400, proportion=True)
    assert row["delta"] == pytest.approx(0.2) and row["delta_low"] == expected.interval.low
    assert row["delta_method"] == "unpaired newcombe" and not row["paired"]
    assert row["significant"]  # 0.5 -> 0.7 on 400 items: the interval excludes zero
    qa = table.stats.set_index(["benchmark", "evaluation"]).loc[("qa", "step-200")]
    assert not qa["significant"]  # 0.25 -> 0.26 is noise
    base = table.stats.set_index(["benchmark", "evaluation"]).loc[("mmlu", "step-100")]
    assert math.isnan(base["delta"]) and base["baseline"] == "step-100"


def test_compare_to_a_chosen_baseline(two_checkpoints: list[Any]) -> None:
    for baseline in ("step-200", "eval_b", 1, two_checkpoints[1]):
        table = compare(two_checkpoints, baseline=baseline)
        row = table.stats.set_index(["benchmark", "evaluation"]).loc[("mmlu", "step-100")]
        assert row["delta"] == pytest.approx(-0.2) and row["baseline"] == "step-200"
    with pytest.raises(ScaimindValueError, match="baseline 'step-9' is none of the compared"):
        compare(two_checkpoints, baseline="step-9")


def test_an_unknown_metric_is_an_error_that_lists_the_metrics(two_checkpoints: list[Any]) -> None:
    with pytest.raises(ScaimindKeyError, match="available: accuracy, exact_match"):
        compare(two_checkpoints, metric="nonexistent")
    only_mmlu = compare(two_checkpoints, metric="ACCURACY")  # matched case-blind
    assert only_mmlu.loc["mmlu", "step-100"] == 0.5
    assert list(only_mmlu.index) == ["mmlu"]  # qa has no accuracy: no row of NaN


def test_the_display_shows_n_intervals_and_marks_real_differences(
    two_checkpoints: list[Any],
) -> None:
    table = compare(two_checkpoints)
    text = repr(table)
    assert "Δ to step-100" in text and "n=400" in text
    assert "0.7000 [0.653, 0.743] n=400 Δ +0.2000" in text and "unpaired ▲" in text
    page = table._repr_html_()
    assert page.count('data-significant="true"') == 1  # mmlu only; qa's interval spans zero
    assert 'data-significant="false"' in page and "accuracy, exact_match: score [95% CI] n" in page


def test_styled_tints_pass_and_fail_from_the_theme(two_checkpoints: list[Any]) -> None:
    page = styled(two_checkpoints, {"mmlu": 0.6, "qa": 0.5}).to_html()
    assert OK.css in page and BAD.css in page and "#d4edda" not in page
    assert "pass: mmlu ≥ 0.6, qa ≥ 0.5" in page and "0.7000" in page
    plain = styled(pd.DataFrame({"x": [0.5]}, index=["mmlu"]), {"mmlu": 0.4}).to_html()
    assert OK.css in plain


def test_labels_and_values_are_escaped(make_eval: Any) -> None:
    evs = [
        make_eval("COMPLETED", checkpoint_id="<i>a</i>", results={"<b>m</b>": {"accuracy": 0.5}})
    ]
    page = compare(evs)._repr_html_()
    assert "<i>a</i>" not in page and "<b>m</b>" not in page and "&lt;b&gt;m&lt;/b&gt;" in page


def test_pass_fail_is_the_plain_text_twin(two_checkpoints: list[Any]) -> None:
    table = pass_fail(two_checkpoints, {"mmlu": 0.6})
    assert table.to_dict("records") == [
        {
            "benchmark": "mmlu",
            "evaluation": "step-100",
            "score": 0.5,
            "threshold": 0.6,
            "passed": False,
        },
        {
            "benchmark": "mmlu",
            "evaluation": "step-200",
            "score": 0.7,
            "threshold": 0.6,
            "passed": True,
        },
    ]


def test_thresholds_for_unknown_benchmarks_are_a_clear_error(two_checkpoints: list[Any]) -> None:
    with pytest.raises(
        ScaimindValueError, match="thresholds name benchmarks without results: 'gsm8k'"
    ):
        styled(two_checkpoints, {"gsm8k": 0.5})


def test_limited_frame_shows_a_note_but_keeps_all_rows() -> None:
    frame = limited(pd.DataFrame({"x": range(25)}), 10)
    assert len(frame) == 25
    assert "Showing 10 of 25 rows (display_limit=10)" in repr(frame)
    html = frame._repr_html_()
    assert "Showing 10 of 25 rows" in html and "<td>9</td>" in html and "<td>10</td>" not in html
    assert type(frame.head(3)) is pd.DataFrame  # operations give plain frames
    assert "Showing" not in repr(limited(pd.DataFrame({"x": range(25)}), 0))


def test_plot_compare_draws_error_bars_names_the_metric_and_keeps_the_legend_clear(
    two_checkpoints: list[Any],
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from scaimind_nb._plot import plot_compare

    ax = plot_compare(two_checkpoints, thresholds={"mmlu": 0.6}, metric="accuracy")
    assert sorted(round(p.get_height(), 2) for p in ax.patches) == [0.5, 0.7]
    assert ax.get_ylabel() == "accuracy"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["step-100", "step-200"]
    caps = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    assert len(caps) == 2  # one error bar set per checkpoint
    wilson = stats.wilson_interval(0.7, 400, 0.95)
    segments = caps[1].lines[2][0].get_segments()
    assert [round(y, 6) for y in segments[0][:, 1]] == [round(wilson.low, 6), round(wilson.high, 6)]
    figure = ax.figure
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    legend = ax.get_legend().get_window_extent(renderer)
    for bar in ax.patches:
        assert not legend.overlaps(bar.get_window_extent(renderer))
    mixed = plot_compare(two_checkpoints)
    assert mixed.get_ylabel() == "score (accuracy, exact_match)"
