"""Widget state without a frontend: bar styles and values, the text fallback, Cancel, Ctrl-C."""

from __future__ import annotations

import _thread
import asyncio
import threading
import time
from typing import Any

import pytest

from scaimind_nb import EvaluationRun, evaluate
from scaimind_nb._models import Evaluation

from .conftest import make_eval


class ScriptedClient:
    """Returns the given snapshots one per `get`, then the last one forever."""

    def __init__(self, *snapshots: Evaluation) -> None:
        self.snapshots = list(snapshots)
        self.cancelled: list[str] = []

    def get(self, evaluation_id: str) -> Evaluation:
        return self.snapshots.pop(0) if len(self.snapshots) > 1 else self.snapshots[0]

    def cancel(self, evaluation_id: str) -> Evaluation:
        self.cancelled.append(evaluation_id)
        return self.snapshots[-1]


def _widget_run(client: ScriptedClient, first: Evaluation) -> EvaluationRun:
    return EvaluationRun(client, first, progress="widget", poll_interval=0.01)  # type: ignore[arg-type]


def _bars(run: EvaluationRun) -> dict[str, Any]:
    row = run._board.view.rows[run.evaluation_id]
    return {name: widgets[1] for name, widgets in row.bars.items()}


def test_completed_run_turns_green_and_shows_results() -> None:
    client = ScriptedClient(
        make_eval("RUNNING", progress=(("mmlu", 2, 4),)),
        make_eval("COMPLETED", progress=(("mmlu", 4, 4),), results={"mmlu": {"accuracy": 0.5}}),
    )
    run = _widget_run(client, make_eval("QUEUED"))
    assert run.wait(timeout=10).status.value == "COMPLETED"
    bar = _bars(run)["mmlu"]
    assert (bar.bar_style, bar.value, bar.max) == ("success", 4.0, 4.0)
    row = run._board.view.rows[run.evaluation_id]
    assert row.cancel.disabled and row.cancel.layout.visibility == "hidden"
    assert "<td>accuracy</td><td>0.5000</td>" in row.results.value
    box = run._board.view.box
    # the saved fallback is the board, never "VBox(children=...)"
    assert repr(box).startswith("eval_1  COMPLETED")
    bundle = box._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert (
        bundle["text/plain"].startswith("eval_1  COMPLETED") and "VBox" not in bundle["text/plain"]
    )
    assert 'data-status="COMPLETED"' in bundle["text/html"]


def test_running_bar_follows_coordinator_progress() -> None:
    client = ScriptedClient(make_eval("RUNNING", progress=(("mmlu", 3, 10), ("qa", 0, None))))
    run = _widget_run(client, make_eval("QUEUED"))
    deadline = time.monotonic() + 5
    while run.evaluation.status.value != "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.02)
    run._board.refresh(force=True)
    bars = _bars(run)
    assert (bars["mmlu"].value, bars["mmlu"].max, bars["mmlu"].bar_style) == (3.0, 10.0, "")
    # no total reported: an indeterminate (full, info-style) bar
    assert (bars["qa"].value, bars["qa"].max, bars["qa"].bar_style) == (1.0, 1.0, "info")
    run._board.stop()


@pytest.mark.parametrize("status", ["FAILED", "CANCELLED"])
def test_failed_run_turns_red_with_reason(status: str) -> None:
    client = ScriptedClient(
        make_eval("RUNNING", progress=(("mmlu", 1, 4),)),
        make_eval(status, progress=(("mmlu", 1, 4),), error="out of memory"),
    )
    run = _widget_run(client, make_eval("QUEUED"))
    run.wait(timeout=10)
    bar = _bars(run)["mmlu"]
    assert (bar.bar_style, bar.value) == ("danger", 1.0)
    header = run._board.view.rows[run.evaluation_id].header.value
    assert status in header and "out of memory" in header and "#c62828" in header


def test_await_and_raise_on_failure() -> None:
    from scaimind_nb import EvaluationFailedError

    client = ScriptedClient(make_eval("FAILED", error="boom"))
    run = EvaluationRun(client, make_eval("RUNNING"), progress="off", poll_interval=0.01)  # type: ignore[arg-type]

    async def main() -> Evaluation:
        return await run

    assert asyncio.run(main()).status.value == "FAILED"
    with pytest.raises(EvaluationFailedError, match="ended FAILED: boom"):
        run.wait(raise_on_failure=True)


def test_wait_timeout_keeps_the_run_alive() -> None:
    from scaimind_nb import WaitTimeoutError

    client = ScriptedClient(make_eval("RUNNING"))
    run = EvaluationRun(client, make_eval("RUNNING"), progress="off", poll_interval=0.01)  # type: ignore[arg-type]
    with pytest.raises(WaitTimeoutError, match=r"not finished after 0\.2s"):
        run.wait(timeout=0.2)
    assert not run.done
    client.snapshots = [make_eval("COMPLETED")]
    assert run.wait(timeout=5).status.value == "COMPLETED"


def _wait_until_running(run: EvaluationRun) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ev = run.evaluation
        if ev.status.value == "RUNNING" and ev.progress and ev.progress[0].completed >= 1:
            return
        time.sleep(0.05)
    raise AssertionError(f"still {run.evaluation.status} after 20 s")


def test_cancel_button_cancels_on_the_coordinator(slow_model: Any, nb_client: Any) -> None:
    run = evaluate(
        slow_model.job_id,
        slow_model.model_uri,
        [slow_model.benchmark],
        wait=False,
        progress="widget",
        client=nb_client,
        poll_interval=0.1,
    )
    _wait_until_running(run)
    time.sleep(0.3)  # let a render land
    bar = _bars(run)[slow_model.benchmark["name"]]
    assert bar.max == 8.0 and bar.bar_style == ""
    row = run._board.view.rows[run.evaluation_id]
    row.cancel.click()
    final = run.wait(timeout=30)
    assert final.status.value == "CANCELLED"
    assert nb_client.get(run.evaluation_id).status.value == "CANCELLED"
    assert bar.bar_style == "danger" and row.cancel.disabled


def test_interrupt_during_blocking_wait_cancels_remotely(slow_model: Any, nb_client: Any) -> None:
    run = evaluate(
        slow_model.job_id,
        slow_model.model_uri,
        [slow_model.benchmark],
        wait=False,
        progress="off",
        client=nb_client,
        poll_interval=0.1,
    )
    _wait_until_running(run)
    threading.Timer(0.2, _thread.interrupt_main).start()
    with pytest.raises(KeyboardInterrupt):
        run.wait(timeout=30)
    final = run.wait(timeout=30)
    assert final.status.value == "CANCELLED"
    assert "interrupted" in run._row.note
