"""Pivot, pass/fail styling, the display limit and the plot helper on real Evaluation objects."""

from __future__ import annotations

import pandas as pd
import pytest

from scaimind_nb import ScaimindValueError
from scaimind_nb._views import limited, pass_fail, styled

from .conftest import make_eval


def _checkpoints() -> list:
    return [
        make_eval(
            "COMPLETED",
            evaluation_id="eval_a",
            checkpoint_id="step-100",
            results={"mmlu": {"accuracy": 0.5}, "qa": {"exact_match": 0.25}},
        ),
        make_eval(
            "COMPLETED",
            evaluation_id="eval_b",
            checkpoint_id="step-200",
            results={"mmlu": {"accuracy": 0.7}, "qa": {"exact_match": 0.75}},
        ),
    ]


def test_styled_colours_pass_and_fail() -> None:
    html = styled(_checkpoints(), {"mmlu": 0.6, "qa": 0.5}).to_html()
    assert "background-color:#d4edda" in html.replace(": ", ":")
    assert "background-color:#f8d7da" in html.replace(": ", ":")
    assert "pass: mmlu ≥ 0.6, qa ≥ 0.5" in html
    assert "0.7000" in html


def test_pass_fail_is_the_plain_text_twin() -> None:
    table = pass_fail(_checkpoints(), {"mmlu": 0.6})
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


def test_thresholds_for_unknown_benchmarks_are_a_clear_error() -> None:
    with pytest.raises(
        ScaimindValueError, match="thresholds name benchmarks without results: 'gsm8k'"
    ):
        styled(_checkpoints(), {"gsm8k": 0.5})


def test_limited_frame_shows_a_note_but_keeps_all_rows() -> None:
    frame = limited(pd.DataFrame({"x": range(25)}), 10)
    assert len(frame) == 25
    assert "Showing 10 of 25 rows (display_limit=10)" in repr(frame)
    html = frame._repr_html_()
    assert "Showing 10 of 25 rows" in html and "<td>9</td>" in html and "<td>10</td>" not in html
    assert type(frame.head(3)) is pd.DataFrame  # operations give plain frames
    assert "Showing" not in repr(limited(pd.DataFrame({"x": range(25)}), 0))


def test_plot_compare_draws_a_bar_per_checkpoint_and_threshold() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from scaimind_nb._plot import plot_compare

    ax = plot_compare(_checkpoints(), thresholds={"mmlu": 0.6})
    heights = sorted(round(p.get_height(), 2) for p in ax.patches)
    assert heights == [0.25, 0.5, 0.7, 0.75]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["step-100", "step-200"]
    assert len(ax.collections) == 1  # the dashed threshold line
