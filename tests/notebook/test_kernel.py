"""A real ipykernel driven over ZMQ: Cancel clicked while a cell blocks, the stop button, doctor.

The test plays the frontend: it reads the kernel's IOPub messages, clicks Cancel by sending the
widget's comm message on the shell channel, and presses stop with an interrupt request.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class Frontend:
    """The messages of one kernel, read the way JupyterLab reads them."""

    def __init__(self, km: Any, kc: Any) -> None:
        self.km, self.kc = km, kc
        self.cancel_buttons: list[str] = []
        self.seen: list[dict[str, Any]] = []

    def execute(self, code: str) -> str:
        return str(self.kc.execute(code))

    def until(self, done: Any, timeout: float = 120) -> dict[str, Any]:
        """Read IOPub until `done(msg)` holds for a message; return that message."""
        while True:
            msg = self.kc.get_iopub_msg(timeout=timeout)
            self.seen.append(msg)
            content = msg["content"]
            if msg["msg_type"] == "comm_open":
                state = content["data"].get("state", {})
                if (
                    state.get("_model_name") == "ButtonModel"
                    and state.get("description") == "Cancel"
                ):
                    self.cancel_buttons.append(content["comm_id"])
            if done(msg):
                return msg

    def idle(self, parent: str) -> Any:
        return lambda m: (
            m["msg_type"] == "status"
            and m["content"]["execution_state"] == "idle"
            and m["parent_header"].get("msg_id") == parent
        )

    def reply(self, parent: str) -> dict[str, Any]:
        """The shell reply to `parent` (earlier replies are skipped)."""
        while True:
            msg = self.kc.get_shell_msg(timeout=60)
            if msg["parent_header"].get("msg_id") == parent:
                return msg

    def click(self, comm_id: str) -> None:
        content = {"comm_id": comm_id, "data": {"method": "custom", "content": {"event": "click"}}}
        self.kc.shell_channel.send(self.kc.session.msg("comm_msg", content))

    def of(self, parent: str, kind: str) -> list[dict[str, Any]]:
        return [
            m
            for m in self.seen
            if m["msg_type"] == kind and m["parent_header"].get("msg_id") == parent
        ]


def running_with_progress(msg: dict[str, Any]) -> bool:
    """A row update showing the evaluation RUNNING with at least one item done."""
    if msg["msg_type"] != "comm_msg":
        return False
    value = msg["content"]["data"].get("state", {}).get("value", "")
    return 'data-status="RUNNING"' in value and re.search(r"[1-9]\d*/40", value) is not None


@pytest.fixture
def frontend(coordinator: Any) -> Iterator[Frontend]:
    from jupyter_client import KernelManager

    km = KernelManager(kernel_name="python3")
    env = {
        **os.environ,
        "SCAIGRID_HOST": coordinator.url,
        "SCAIGRID_API_KEY": coordinator.api_key,
        "PYTHONPATH": str(ROOT),
    }
    km.start_kernel(env=env)
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    fe = Frontend(km, kc)
    setup = fe.execute("import scaimind_nb")
    fe.until(fe.idle(setup))
    yield fe
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def _evaluate(slow_model: Any) -> str:
    return (
        f"run = scaimind_nb.evaluate({slow_model.job_id!r}, {slow_model.model_uri!r}, "
        f"[{slow_model.benchmark!r}], checkpoint_id='ck-1', poll_interval=0.2)"
    )


@pytest.mark.slow
def test_cancel_clicked_while_the_cell_blocks_cancels_it(
    frontend: Frontend, slow_model: Any
) -> None:
    # like "Run All": every request is sent at once, before the blocking cell even starts
    before = frontend.execute("import time; time.sleep(0.5)")
    cell = frontend.execute(_evaluate(slow_model))
    queued = [frontend.execute(f"print('queued {i}')") for i in range(4)]
    after = frontend.execute(
        "print('next cell:', run.status.value, run.evaluation.progress[0].completed)"
    )
    frontend.until(running_with_progress)
    assert len(frontend.cancel_buttons) == 1
    frontend.click(frontend.cancel_buttons[0])
    frontend.until(frontend.idle(cell))
    assert frontend.reply(cell)["content"]["status"] == "ok"
    # the blocking cell ended CANCELLED, and its live widget was replaced by the static state
    final = frontend.of(cell, "update_display_data")[-1]["content"]["data"]
    assert WIDGET_VIEW not in final and 'data-status="CANCELLED"' in final["text/html"]
    assert final["text/plain"].startswith("ck-1  ")
    # the cells queued behind it ran after it, not during the wait, in the order they were sent
    frontend.until(frontend.idle(after))
    inputs = [
        m["parent_header"]["msg_id"] for m in frontend.seen if m["msg_type"] == "execute_input"
    ]
    assert inputs[-7:] == [before, cell, *queued, after]
    printed = "".join(m["content"]["text"] for m in frontend.of(after, "stream"))
    status, done = printed.split()[2:4]
    assert status == "CANCELLED" and int(done) < slow_model.total


@pytest.mark.slow
def test_the_stop_button_cancels_without_a_traceback_and_keeps_the_handle(
    frontend: Frontend, slow_model: Any
) -> None:
    cell = frontend.execute(_evaluate(slow_model))
    frontend.until(running_with_progress)
    frontend.km.interrupt_kernel()
    frontend.until(frontend.idle(cell))
    [error] = frontend.of(cell, "error")
    assert error["content"]["ename"] == "Interrupted"
    assert error["content"]["traceback"] == [
        f"Interrupted: evaluation {error['content']['evalue'].split()[1]} is cancelled on the "
        "coordinator; `run` holds its handle"
    ]
    check = frontend.execute("print(run.wait(timeout=60).status.value)")
    frontend.until(frontend.idle(check))
    assert (
        "".join(m["content"]["text"] for m in frontend.of(check, "stream")).strip() == "CANCELLED"
    )


@pytest.mark.slow
def test_doctor_says_cancel_works_while_a_cell_blocks(frontend: Frontend) -> None:
    cell = frontend.execute("%load_ext scaimind_nb\n%scaimind doctor")
    frontend.until(frontend.idle(cell))
    out = "".join(m["content"]["text"] for m in frontend.of(cell, "stream"))
    assert "display mode : widget" in out
    assert "cancel button: works while a cell blocks" in out


@pytest.mark.slow
def test_coordinator_worker_errors_go_to_its_logger_not_into_the_cell(frontend: Frontend) -> None:
    setup = """\
import logging
from scaimind_local import LocalCoordinator
from scaimind_local.testing import write_custom_dataset, write_model
coordinator = LocalCoordinator().start()
dataset = write_custom_dataset(coordinator.drive_root, "org/eval/a.jsonl", [{"prompt": "a", "reference": "b"}])
uri = write_model(coordinator.drive_root, "org/models/bad", options={"fail": "CUDA on fire"})
coordinator.register_job("job_bad", uri)
client = scaimind_nb.Client(coordinator.url, coordinator.api_key)
def fail():
    run = scaimind_nb.evaluate("job_bad", uri, [{"name": "custom-a", "dataset": dataset}], client=client, progress="off")
    return run.status.value"""
    frontend.until(frontend.idle(frontend.execute(setup)))
    # no handler of the notebook's own: the worker's traceback must not land in the cell
    bare = frontend.execute("print(fail())")
    frontend.until(frontend.idle(bare))
    assert [m["content"] for m in frontend.of(bare, "stream")] == [
        {"name": "stdout", "text": "FAILED\n"}
    ]
    # it is on the coordinator's logger, for a handler that wants it
    caught = frontend.execute(
        "records = []\n"
        "handler = logging.Handler(); handler.emit = records.append\n"
        "logging.getLogger('scaimind_local').addHandler(handler)\n"
        "print(fail(), any(r.exc_info and 'CUDA on fire' in str(r.exc_info[1]) for r in records))"
    )
    frontend.until(frontend.idle(caught))
    text = "".join(m["content"]["text"] for m in frontend.of(caught, "stream"))
    assert text.strip() == "FAILED True"
