"""Display-mode detection, the text/HTML renderings, meters, theme contrast (no server, no kernel)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest

from scaimind_nb import _display
from scaimind_nb._display import (
    BAD,
    HALT,
    OK,
    RUN,
    Phase,
    RowState,
    bars,
    detect_mode,
    meter_text,
    render_html,
    render_line,
    render_text,
)
from scaimind_nb._progress import Throttle


class ZMQInteractiveShell:
    kernel = object()
    execution_count = 1


class TerminalInteractiveShell:
    execution_count = 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_python_gets_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_display.ENV_PROGRESS, raising=False)
    monkeypatch.setattr(_display, "_ipython", lambda: None)
    assert detect_mode() == (
        "text",
        "not running inside IPython, so progress is printed as text lines",
    )


def test_terminal_ipython_gets_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_display.ENV_PROGRESS, raising=False)
    monkeypatch.setattr(_display, "_ipython", TerminalInteractiveShell)
    mode, reason = detect_mode()
    assert mode == "text" and "TerminalInteractiveShell" in reason


def test_kernel_with_ipywidgets_gets_widget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_display.ENV_PROGRESS, raising=False)
    monkeypatch.setattr(_display, "_ipython", ZMQInteractiveShell)
    mode, reason = detect_mode()
    assert mode == "widget" and "ipywidgets 8" in reason


def test_kernel_without_ipywidgets_gets_html(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(_display.ENV_PROGRESS, raising=False)
    monkeypatch.setattr(_display, "_ipython", ZMQInteractiveShell)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import fails as if not installed
    mode, reason = detect_mode()
    assert mode == "html" and "pip install ipywidgets" in reason


def test_explicit_and_env_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_display, "_ipython", ZMQInteractiveShell)
    assert detect_mode("HTML")[0] == "html"
    monkeypatch.setenv(_display.ENV_PROGRESS, "text")
    mode, reason = detect_mode()
    assert mode == "text" and _display.ENV_PROGRESS in reason
    with pytest.raises(ValueError, match="unknown progress mode 'bars': use one of auto, widget"):
        detect_mode("bars")


def test_doctor_explains_mode_and_never_shows_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCAIGRID_API_KEY", "sk-doctor-secret")
    monkeypatch.setattr(_display, "_ipython", ZMQInteractiveShell)
    monkeypatch.delenv(_display.ENV_PROGRESS, raising=False)
    report = _display.doctor_report()
    assert "display mode : widget" in report and "ipywidgets" in report
    # a fake kernel object has not the shape of ipykernel 7: the doctor says clicks wait
    assert "cancel button: clicks are handled after the cell ends" in report
    assert "SCAIGRID_API_KEY: set" in report
    assert "sk-doctor-secret" not in report


def _row(make_eval: Any, clock: Any = None, **kwargs: Any) -> RowState:
    ev = make_eval(**kwargs)
    return RowState(ev) if clock is None else RowState(ev, clock=clock)


def test_running_bar_shows_percent_rate_and_eta_like_tqdm(make_eval: Any) -> None:
    clock = FakeClock()
    row = RowState(make_eval(progress=(("mmlu", 2, 40),)), clock=clock)
    assert meter_text(bars(row)[0]) == "5% 2/40 [00:00<?, ?it/s]"
    clock.now += 4.0
    row.observe(make_eval(progress=(("mmlu", 22, 40),)))
    bar = bars(row)[0]
    assert (bar.phase, bar.rate, bar.eta) == (Phase.RUNNING, 5.0, 3.6)
    assert meter_text(bar) == "55% 22/40 [00:04<00:03, 5.00it/s]"
    assert "mmlu 55% 22/40 [00:04<00:03, 5.00it/s]" in render_line(row)
    clock.now += 120.0  # slower than one item a second: tqdm's s/it
    row.observe(make_eval(progress=(("mmlu", 23, 40),)))
    assert "s/it" in meter_text(bars(row)[0])
    page = render_html([row])
    assert 'aria-valuenow="57"' in page and 'data-phase="running"' in page


def test_unknown_totals_are_indeterminate_never_full(make_eval: Any) -> None:
    row = _row(make_eval, progress=(("mmlu", 3, None),))
    bar = bars(row)[0]
    assert bar.fraction is None and meter_text(bar).startswith("3/? [")
    page = render_html([row])
    assert 'class="scaimind-indeterminate"' in page and "aria-valuenow" not in page
    queued = render_html([_row(make_eval, status="QUEUED", benchmarks=("mmlu",))])
    assert 'data-phase="waiting"' in queued and "width:0.0%" in queued
    assert 'class="scaimind-indeterminate"' not in queued and ">queued<" in queued


def test_failed_keeps_finished_benchmarks_and_blames_only_the_running_one(
    make_eval: Any,
) -> None:
    row = _row(
        make_eval,
        status="FAILED",
        benchmarks=("mmlu", "qa", "humaneval"),
        progress=(("mmlu", 10, 10), ("qa", 4, 10), ("humaneval", 0, None)),
        results={"mmlu": {"accuracy": 0.7}},
        num_samples=10,
        error="benchmark qa failed: RuntimeError: CUDA on fire",
    )
    phases = {bar.benchmark: bar.phase for bar in bars(row)}
    assert phases == {"mmlu": Phase.DONE, "qa": Phase.FAILED, "humaneval": Phase.SKIPPED}
    page = render_html([row])
    done = re.search(r'data-phase="done".*?</div>', page)
    assert done and OK.css in done.group(0) and "width:100.0%" in done.group(0)
    assert BAD.css in re.search(r'data-phase="failed".*?</div>', page).group(0)
    assert "failed at 4/10" in page and "not run" in page
    assert "<td" in page and "0.7000" in page  # the finished benchmark keeps its results
    assert "mmlu=0.7000" in render_line(row) and "reason: benchmark qa failed" in render_line(row)


def test_cancelled_in_the_queue_is_not_red(make_eval: Any) -> None:
    row = _row(make_eval, status="CANCELLED", benchmarks=("mmlu",), error="cancelled by request")
    assert [bar.phase for bar in bars(row)] == [Phase.SKIPPED]
    page = render_html([row])
    assert BAD.css not in page and HALT.css in page  # the status is orange, the bar muted


def test_the_row_shows_the_checkpoint(make_eval: Any) -> None:
    row = _row(make_eval, checkpoint_id="step-3000", progress=(("mmlu", 1, 4),))
    assert render_line(row).startswith("step-3000  eval_1  RUNNING")
    page = render_html([row])
    assert '<b class="scaimind-checkpoint">step-3000</b>' in page
    assert RUN.css in page


def test_everything_put_into_html_is_escaped(make_eval: Any) -> None:
    row = _row(
        make_eval,
        status="FAILED",
        checkpoint_id="<b>ck</b>",
        progress=(("a&b<script>", 1, 2),),
        error="model raised <RuntimeError> & 'quit'",
    )
    row.note = "<img src=x onerror=alert(1)>"
    page = render_html([row])
    for raw in ("<b>ck</b>", "<script>", "<RuntimeError>", "<img"):
        assert raw not in page
    assert "&lt;b&gt;ck&lt;/b&gt;" in page and "a&amp;b&lt;script&gt;" in page
    assert "model raised &lt;RuntimeError&gt; &amp; &#x27;quit&#x27;" in page


def test_a_partial_score_is_shown_while_running(make_eval: Any) -> None:
    row = _row(make_eval, progress=(("qa", 3, 8),), partial={"qa": 0.6667})
    assert "score 0.6667 so far" in meter_text(bars(row)[0])


def test_completed_row_shows_its_results_primary_metric_first(make_eval: Any) -> None:
    row = _row(
        make_eval,
        status="COMPLETED",
        progress=(("mmlu", 10, 10),),
        results={"mmlu": {"accuracy": 0.625, "f1": 0.5}},
        num_samples=10,
    )
    text = render_text([row])
    assert "mmlu=0.6250" in text
    assert re.search(r"mmlu\s+accuracy\s+0\.6250\s+10", text)
    page = render_html([row])
    assert page.index(">accuracy<") < page.index(">f1<")
    assert 'data-status="COMPLETED"' in page and "scaimind-results" in page


def test_display_limit_truncates_with_a_note(make_eval: Any) -> None:
    results = {f"b{i}": {"accuracy": i / 10} for i in range(5)}
    row = _row(make_eval, status="COMPLETED", results=results)
    text = render_text([row], limit=3)
    assert "truncated to display_limit=3 of 5 rows" in text
    assert "b3" not in text.split("results:")[1]
    assert "truncated to display_limit=3 of 5 rows" in render_html([row], limit=3)
    assert "truncated" not in render_text([row], limit=0)


def test_several_evaluations_are_rows_of_one_board(make_eval: Any) -> None:
    rows = [
        _row(make_eval, evaluation_id="eval_a"),
        _row(make_eval, evaluation_id="eval_b", status="QUEUED"),
    ]
    page = render_html(rows)
    assert page.count('class="scaimind-row"') == 2
    assert render_text(rows).splitlines()[1].startswith("eval_b  QUEUED")


def test_throttle_allows_at_most_one_update_per_interval() -> None:
    now = [0.0]
    throttle = Throttle(0.25, clock=lambda: now[0])
    passed = 0
    for _ in range(100):  # 100 attempts over 1 s
        passed += throttle.ready()
        now[0] += 0.01
    assert passed == 4


def test_finished_rows_use_the_servers_duration(make_eval: Any) -> None:
    assert render_line(RowState(make_eval("COMPLETED"))).startswith("eval_1  COMPLETED  0:05")


# ----------------------------------------------------------------------------- theme contrast


def _theme_colours(theme: str) -> dict[str, tuple[float, float, float]]:
    """The `--jp-*` colours of an installed JupyterLab theme, `var(--md-*, fallback)` resolved."""
    import jupyterlab

    root = Path(jupyterlab.__file__).resolve().parents[4] / "share/jupyter/lab/themes/@jupyterlab"
    css = (root / f"theme-{theme}-extension/index.css").read_text()
    out = {}
    for name, value in re.findall(r"(--jp-[a-z0-9-]+):([^;]+);", css):
        match = re.fullmatch(r"var\(--md-[a-z0-9-]+,(#[0-9a-f]+)\)|(#[0-9a-f]+|white|black)", value)
        if match:
            out[name] = _rgb(match.group(1) or match.group(2))
    return out


def _rgb(value: str) -> tuple[float, float, float]:
    value = {"white": "#ffffff", "black": "#000000"}.get(value, value).lstrip("#")
    if len(value) == 3:
        value = "".join(ch * 2 for ch in value)
    return tuple(int(value[i : i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


def contrast(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """WCAG 2 contrast ratio of two sRGB colours (components in [0, 1])."""

    def luminance(c: tuple[float, ...]) -> float:
        lin = [x / 12.92 if x <= 0.04045 else ((x + 0.055) / 1.055) ** 2.4 for x in c]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("tone", [OK, BAD, HALT, RUN], ids=["ok", "bad", "halt", "run"])
def test_status_colours_keep_4_5_to_1_in_jupyterlab_themes(theme: str, tone: Any) -> None:
    colours = _theme_colours(theme)
    accent, text = colours[tone.variable], colours["--jp-ui-font-color0"]
    share = _display.ACCENT_SHARE / 100
    mixed = tuple(share * a + (1 - share) * t for a, t in zip(accent, text, strict=True))
    assert contrast(mixed, colours["--jp-layout-color0"]) >= 4.5


def test_notebook_modules_import_nothing_heavy() -> None:
    import subprocess

    code = (
        "import sys, scaimind_nb, scaimind_nb._evaluate, scaimind_nb._progress, "
        "scaimind_nb._display, scaimind_nb._kernel;"
        "print(sorted(m for m in ('pandas', 'ipywidgets', 'IPython', 'matplotlib', 'zmq') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
