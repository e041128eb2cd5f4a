"""Watches, the poller and the widget without a frontend, against a scripted coordinator.

Every wait here is for the event itself: a future, a rendered state, a served request.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import pytest
from IPython.utils.capture import capture_output

from scaimind_nb import (
    EvaluationFailedError,
    EvaluationRun,
    NotFoundError,
    Status,
    WaitTimeoutError,
    evaluate,
    parse_evaluation,
)
from scaimind_nb._display import BAD, HALT

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _run(scripted: Any, record: Any, *answers: Any, progress: str = "widget") -> EvaluationRun:
    """Watch eval_1 (submitted QUEUED) while the scripted coordinator answers `answers`."""
    scripted.script("eval_1", *answers)
    first = parse_evaluation(record("QUEUED", benchmarks=("mmlu",)))
    return EvaluationRun.watch(scripted.client, first, progress=progress, poll_interval=0.001)


def _row_widgets(run: EvaluationRun) -> Any:
    return run._watch.board.view.rows[run.evaluation_id]


def test_a_finished_run_replaces_its_widget_by_static_html(
    shell: Any, scripted: Any, record: Any
) -> None:
    done = record(
        "COMPLETED", progress=(("mmlu", 4, 4),), results={"mmlu": {"accuracy": 0.5}}, num_samples=4
    )
    with capture_output() as captured:
        run = _run(scripted, record, record("RUNNING", progress=(("mmlu", 2, 4),)), done)
        row = _row_widgets(run)
        assert run.wait(timeout=30).status is Status.COMPLETED
    first, last = captured.outputs[0], captured.outputs[-1]
    assert WIDGET_VIEW in first.data and "VBox" not in first.data["text/plain"]
    display_id = first.transient["display_id"]
    # the live widget output is replaced in place by the final text and HTML: no widget view
    # is left for a notebook reopened without a kernel to fail on
    assert last.update and last.transient["display_id"] == display_id
    assert set(last.data) == {"text/plain", "text/html"}
    assert 'data-status="COMPLETED"' in last.data["text/html"]
    assert ">0.5000<" in last.data["text/html"]
    assert last.data["text/plain"].startswith("eval_1  COMPLETED")
    assert row.cancel.comm is None and row.html.comm is None  # the widgets are closed


def test_the_row_follows_the_coordinators_progress(
    shell: Any, scripted: Any, record: Any, wait_until: Any
) -> None:
    running = record("RUNNING", progress=(("mmlu", 3, 10), ("qa", 0, None)))
    with capture_output():
        run = _run(scripted, record, running)
        row = _row_widgets(run)
        wait_until(lambda: "30% 3/10" in row.html.value, what="the row to show 3/10")
        assert 'data-phase="running"' in row.html.value
        assert 'data-phase="waiting"' in row.html.value  # qa: no total, not started
        assert not row.cancel.disabled and row.cancel.layout.visibility == "visible"
        scripted.script("eval_1", record("COMPLETED", results={"mmlu": {"accuracy": 1.0}}))
        run.wait(timeout=30)


@pytest.mark.parametrize(("status", "tone"), [("FAILED", BAD), ("CANCELLED", HALT)])
def test_an_ended_run_shows_its_status_colour_and_reason(
    shell: Any, scripted: Any, record: Any, status: str, tone: Any
) -> None:
    ended = record(status, progress=(("mmlu", 1, 4),), error="out of <memory>")
    with capture_output() as captured:
        run = _run(scripted, record, record("RUNNING", progress=(("mmlu", 1, 4),)), ended)
        assert run.wait(timeout=30).status is Status(status)
    page = captured.outputs[-1].data["text/html"]
    assert tone.css in page and "out of &lt;memory&gt;" in page
    assert f"{status.lower()} at 1/4" in page


def test_await_and_raise_on_failure(scripted: Any, record: Any) -> None:
    run = _run(scripted, record, record("FAILED", error="boom"), progress="off")

    async def main() -> Any:
        return await run

    assert asyncio.run(main()).status is Status.FAILED
    with pytest.raises(EvaluationFailedError, match="ended FAILED: boom"):
        run.wait(raise_on_failure=True)


def test_a_wait_timeout_keeps_the_run_alive(scripted: Any, record: Any) -> None:
    run = _run(scripted, record, record("RUNNING"), progress="off")
    with pytest.raises(WaitTimeoutError, match="not finished after") as info:
        run.wait(timeout=0.05)
    assert info.value.last is not None and not run.done
    scripted.script("eval_1", record("COMPLETED"))
    assert run.wait(timeout=30).status is Status.COMPLETED


def test_timeout_none_is_the_clients_wait_timeout(scripted: Any, record: Any) -> None:
    """`run.wait()` waits as long as `Client.wait(timeout=None)`: the client's `wait_timeout`."""
    from scaimind_nb import Client

    ticks = iter(range(0, 10**6, 1000))  # a core clock that jumps 1000 s per look
    client = Client(
        "http://scripted.test", "sk-x", transport=httpx.MockTransport(scripted), wait_timeout=5000
    )
    client._core.clock = lambda: float(next(ticks))
    scripted.script("eval_1", record("RUNNING"))
    run = EvaluationRun.watch(
        client, parse_evaluation(record("QUEUED")), progress="off", poll_interval=0.001
    )
    with pytest.raises(WaitTimeoutError) as info:
        run.wait()
    assert info.value.last is not None and info.value.last.status is Status.RUNNING
    client.close()


def test_transient_errors_cost_a_poll_not_the_run(scripted: Any, record: Any) -> None:
    busy = httpx.Response(503, json={"error": {"message": "busy"}})
    run = _run(
        scripted,
        record,
        busy,
        busy,
        busy,
        record("RUNNING"),
        busy,
        record("COMPLETED"),
        progress="off",
    )
    assert run.wait(timeout=30).status is Status.COMPLETED


def test_a_refusal_ends_the_wait_with_the_error_noted(
    shell: Any, scripted: Any, record: Any
) -> None:
    gone = httpx.Response(404, json={"error": {"message": "evaluation <eval_1> was deleted"}})
    with capture_output() as captured:
        run = _run(scripted, record, gone, progress="html")
        with pytest.raises(NotFoundError, match="was deleted"):
            run.wait(timeout=30)
    page = captured.outputs[-1].data["text/html"]
    assert "note: polling stopped: HTTP 404" in page and "&lt;eval_1&gt;" in page


def test_the_cancel_button_cancels_on_the_coordinator(
    shell: Any, scripted: Any, record: Any, wait_until: Any
) -> None:
    with capture_output():
        run = _run(scripted, record, record("RUNNING", progress=(("mmlu", 3, 10),)))
        row = _row_widgets(run)
        wait_until(lambda: "3/10" in row.html.value, what="the running row")
        row.cancel.click()
        assert scripted.cancelled == ["eval_1"]
        assert row.cancel.disabled
        assert run.wait(timeout=30).status is Status.CANCELLED


def test_a_failed_cancel_is_shown_and_the_button_comes_back(
    shell: Any, scripted: Any, record: Any, wait_until: Any
) -> None:
    with capture_output():
        run = _run(scripted, record, record("RUNNING", progress=(("mmlu", 3, 10),)))
        row = _row_widgets(run)
        wait_until(lambda: "3/10" in row.html.value, what="the running row")
        scripted.client.close()  # the cancel request cannot be sent
        row.cancel.click()
        assert not row.cancel.disabled
        assert "cancel failed:" in row.html.value
        with pytest.raises(RuntimeError, match="closed"):
            run.wait(timeout=30)


def test_the_stop_button_cancels_and_says_so_in_one_line(
    scripted: Any, record: Any, interrupt_when_waiting: Any
) -> None:
    from scaimind_nb._kernel import Interrupted

    run = _run(scripted, record, record("RUNNING"), progress="off")
    interrupt_when_waiting(lambda: scripted.gets.get("eval_1", 0) >= 2)
    with pytest.raises(Interrupted) as info:
        run.wait(timeout=30)
    assert scripted.cancelled == ["eval_1"]
    assert info.value._render_traceback_() == [
        "Interrupted: evaluation eval_1 is cancelled on the coordinator"
    ]
    assert run.wait(timeout=30).status is Status.CANCELLED
    assert "interrupted" in run._watch.row.note


def test_evaluate_interrupted_still_gives_the_cells_variable_its_handle(
    shell: Any, scripted: Any, record: Any, interrupt_when_waiting: Any
) -> None:
    scripted.script("eval_1", record("QUEUED"), record("RUNNING"))
    shell.user_ns.update(evaluate=evaluate, client=scripted.client)
    interrupt_when_waiting(lambda: scripted.gets.get("eval_1", 0) >= 2)
    with capture_output() as captured:
        result = shell.run_cell(
            "run = evaluate('job_1', 'scaidrive://org/models/m', ['mmlu'], progress='off', "
            "client=client, poll_interval=0.001)"
        )
    assert type(result.error_in_exec).__name__ == "Interrupted"
    run = shell.user_ns["run"]
    assert isinstance(run, EvaluationRun) and scripted.cancelled == ["eval_1"]
    shown = captured.stdout + captured.stderr
    assert "Traceback" not in shown
    assert "Interrupted: evaluation eval_1 is cancelled on the coordinator" in shown
    assert "`run` holds its handle" in str(result.error_in_exec)
    assert run.wait(timeout=30).status is Status.CANCELLED


def test_a_run_ended_while_another_cell_ran_is_published_again_by_wait(
    shell: Any, scripted: Any, record: Any
) -> None:
    with capture_output() as captured:
        run = _run(scripted, record, record("COMPLETED"), progress="html")
        run._watch.future.result(timeout=30)  # ended while its own cell was still running
        before = len(captured.outputs)
        shell.execution_count += 1  # a later cell waits on it
        run.wait(timeout=30)
        run.wait(timeout=30)
    republished = captured.outputs[before:]
    assert len(republished) == 1 and republished[0].update
    assert 'data-status="COMPLETED"' in republished[0].data["text/html"]


def test_constructing_a_run_has_no_side_effects(scripted: Any, record: Any) -> None:
    from scaimind_nb import _progress

    run = _run(scripted, record, record("COMPLETED"), progress="off")
    run.wait(timeout=30)
    before = (_progress._cell_board, len(_progress.POLLER._watches), threading.active_count())
    again = EvaluationRun(run._watch)
    after = (_progress._cell_board, len(_progress.POLLER._watches), threading.active_count())
    assert after == before and scripted.gets["eval_1"] == 1  # no board, no watch, no request
    assert again.evaluation is run.evaluation and again.done


def test_score_and_result_delegate_to_the_evaluation(scripted: Any, record: Any) -> None:
    done = record("COMPLETED", results={"mmlu": {"accuracy": 0.5, "f1": 0.25}}, num_samples=4)
    run = _run(scripted, record, done, progress="off")
    run.wait(timeout=30)
    assert run.score("mmlu") == run.evaluation.score("mmlu") == 0.5
    assert run.score("mmlu", "f1") == 0.25
    assert run.result("mmlu") is run.evaluation.result("mmlu")
    with pytest.raises(KeyError, match="available: accuracy, f1"):
        run.score("mmlu", "bleu")


def test_flags_are_keyword_only(scripted: Any, record: Any) -> None:
    with pytest.raises(TypeError):
        evaluate("job_1", "scaidrive://m", ["mmlu"], "", False)  # type: ignore[misc]
    run = _run(scripted, record, record("COMPLETED"), progress="off")
    with pytest.raises(TypeError):
        run.table({"mmlu": 0.5}, "accuracy")  # type: ignore[misc]


def test_bad_arguments_are_refused_before_any_request(scripted: Any, record: Any) -> None:
    from scaimind_nb import ScaimindValueError

    scripted.script("eval_1", record("QUEUED"))
    for kwargs, message in (
        ({"progress": "bars"}, "unknown progress mode"),
        ({"timeout": -1}, "timeout must be a finite number"),
        ({"poll_interval": "1s"}, "poll_interval must be a number of seconds"),
        ({"benchmarks": []}, "benchmarks is empty"),
        ({"job_id": " "}, "job_id must be a non-empty string"),
    ):
        args = {"job_id": "job_1", "model_uri": "scaidrive://m", "benchmarks": ["mmlu"], **kwargs}
        with pytest.raises((ScaimindValueError, ValueError), match=message):
            evaluate(client=scripted.client, wait=False, **args)
    assert scripted.submits == 0
