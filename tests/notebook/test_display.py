"""Display-mode detection, the text/HTML renderers and the throttle (no server, no kernel)."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from scaimind_nb import _display
from scaimind_nb._display import RowState, detect_mode, render_html, render_line, render_text
from scaimind_nb._progress import Throttle

from .conftest import make_eval


class ZMQInteractiveShell:
    kernel = object()
    execution_count = 1


class TerminalInteractiveShell:
    execution_count = 1


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
    assert "SCAIGRID_API_KEY: set" in report
    assert "sk-doctor-secret" not in report


def _row(**kwargs: Any) -> RowState:
    return RowState(make_eval(**kwargs))


def test_running_row_shows_progress_per_benchmark() -> None:
    row = _row(progress=(("mmlu", 3, 10), ("humaneval", 0, None)))
    line = render_line(row)
    assert line.startswith("eval_1  RUNNING  0:00")
    assert "mmlu 3/10" in line and "humaneval …" in line
    page = render_html([row])
    assert '<progress value="3" max="10"' in page
    # no total reported: an indeterminate bar (no value attribute)
    assert '<progress style="width:16em;accent-color:#1565c0">' in page
    assert 'data-status="RUNNING"' in page


def test_completed_row_is_green_with_results() -> None:
    row = _row(
        status="COMPLETED",
        progress=(("mmlu", 10, 10),),
        results={"mmlu": {"accuracy": 0.625, "f1": 0.5}},
    )
    text = render_text([row])
    assert "mmlu=0.6250" in text
    assert "mmlu                 accuracy           0.6250" in text
    page = render_html([row])
    assert "#1b7f3b" in page and "<td>accuracy</td><td>0.6250</td>" in page
    # the primary metric comes first
    assert page.index("accuracy") < page.index("<td>f1</td>")


@pytest.mark.parametrize("status", ["FAILED", "CANCELLED"])
def test_failed_row_is_red_with_reason(status: str) -> None:
    row = _row(status=status, error="model raised <RuntimeError>", progress=(("mmlu", 4, 10),))
    assert "reason: model raised <RuntimeError>" in render_line(row)
    page = render_html([row])
    assert "#c62828" in page
    assert "reason: model raised &lt;RuntimeError&gt;" in page  # escaped


def test_display_limit_truncates_with_a_note() -> None:
    results = {f"b{i}": {"accuracy": i / 10} for i in range(5)}
    row = _row(status="COMPLETED", results=results)
    text = render_text([row], limit=3)
    assert "truncated to display_limit=3 of 5 rows" in text
    assert "b3" not in text.split("results:")[1]
    assert "truncated to display_limit=3 of 5 rows" in render_html([row], limit=3)
    assert "truncated" not in render_text([row], limit=0)


def test_several_evaluations_are_rows_of_one_board() -> None:
    rows = [_row(evaluation_id="eval_a"), _row(evaluation_id="eval_b", status="QUEUED")]
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


def test_finished_rows_use_the_servers_duration() -> None:
    from dataclasses import replace
    from datetime import timedelta

    ev = make_eval("COMPLETED")
    ev = replace(ev, updated_at=ev.created_at + timedelta(seconds=125))
    assert render_line(RowState(ev)).startswith("eval_1  COMPLETED  2:05")


def test_notebook_modules_import_nothing_heavy() -> None:
    import subprocess

    code = (
        "import sys, scaimind_nb, scaimind_nb._evaluate, scaimind_nb._progress, scaimind_nb._display;"
        "print(sorted(m for m in ('pandas', 'ipywidgets', 'IPython', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
