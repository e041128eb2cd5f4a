"""Fixtures of the notebook layer: records, a scripted coordinator, shells, slow and scored models.

- `record(...)`: a coordinator record as scaimind_local serves it (snake_case, int64 as strings).
- `make_eval(...)`: that record parsed into an `Evaluation`.
- `scripted`: a coordinator behind `httpx.MockTransport` whose GET answers scripted records one
  by one (the last one forever) and which records cancels; `scripted.client` is a real `Client`,
  so the board polls with the real rules.
- `wait_until(predicate)`: wait for a condition (a rendered state, a served request) itself.
- `interrupt_when_waiting(ready)`: the kernel's stop button (SIGINT) once the main thread blocks
  in a run's wait and `ready()` holds.
- `shell`: a bare in-process `InteractiveShell` (displays can be captured); `ip`: the same with
  `%load_ext scaimind_nb`, talking to the session `coordinator`.
- `nb_client`: a `Client` on the session coordinator; `nb_settings`: the notebook settings,
  restored afterwards.
- `slow_model`: `(job_id, model_uri, benchmark)` whose evaluation runs for a while (40 prompts at
  0.25 s); `checkpoints`: two models of one job that differ on known items of one dataset.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import httpx
import pytest

from scaimind_nb import Client, parse_evaluation

HOST = "http://scripted.test"
KEY = "sk-notebook-scripted-key"
PREFIX = "/v1/modules/scaimind/evaluations/"


@pytest.fixture
def record() -> Callable[..., dict[str, Any]]:
    """Build coordinator records: status, per-benchmark progress, results and error."""

    def build(
        status: str = "RUNNING",
        *,
        evaluation_id: str = "eval_1",
        progress: tuple[tuple[str, int, int | None], ...] = (),
        results: dict[str, dict[str, float]] | None = None,
        num_samples: int | None = None,
        error: str | None = None,
        checkpoint_id: str = "",
        benchmarks: tuple[str, ...] = (),
        partial: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        created = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
        out: dict[str, Any] = {
            "evaluation_id": evaluation_id,
            "job_id": "job_1",
            "model_uri": "scaidrive://org/models/m",
            "checkpoint_id": checkpoint_id,
            "status": status,
            "benchmarks": [{"name": b, "num_samples": "0"} for b in benchmarks],
            "progress": [
                {
                    "benchmark": b,
                    "completed": str(c),
                    "total": str(t or 0),
                    **({"score": (partial or {})[b]} if b in (partial or {}) else {}),
                }
                for b, c, t in progress
            ],
            "results": [
                {
                    "benchmark": b,
                    "metrics": m,
                    "primary_metric": next(iter(m)),
                    "proportion_metrics": [next(iter(m))],
                    **({"num_samples": str(num_samples)} if num_samples else {}),
                }
                for b, m in (results or {}).items()
            ],
            "created_at": created.isoformat(),
            "updated_at": (created + timedelta(seconds=5)).isoformat(),
        }
        if error is not None:
            out["error"] = {"code": "BENCHMARK_FAILED", "message": error}
        return out

    return build


@pytest.fixture
def make_eval(record: Callable[..., dict[str, Any]]) -> Callable[..., Any]:
    """An Evaluation snapshot as the normaliser builds it from a coordinator record."""
    return lambda *args, **kwargs: parse_evaluation(record(*args, **kwargs))


class ScriptedCoordinator:
    """GET of an evaluation answers its scripted records in turn (the last one forever)."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[Any]] = {}
        self.cancelled: list[str] = []
        self.gets: dict[str, int] = {}
        self.submits = 0
        self.lock = threading.Lock()
        self.served = threading.Condition(self.lock)
        self.client = Client(HOST, KEY, transport=httpx.MockTransport(self))

    def script(self, evaluation_id: str, *answers: Any) -> None:
        """Records (dicts) or `httpx.Response`s (faults) to answer, in order."""
        with self.lock:
            self.scripts[evaluation_id] = list(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == PREFIX.rstrip("/"):
            with self.lock:  # a submit answers the first record of the first script
                self.submits += 1
                first = next(iter(self.scripts.values()))[0]
            return httpx.Response(200, json={"data": first})
        path = request.url.path.removeprefix(PREFIX)
        eid, _, action = path.partition("/")
        with self.served:
            answers = self.scripts.get(eid)
            if answers is None:
                return httpx.Response(
                    404, json={"error": {"message": f"evaluation {eid!r} not found"}}
                )
            if action == "samples":  # like a coordinator that keeps no per-item records
                return httpx.Response(404, json={"error": {"message": "no route"}})
            if request.method == "POST" and action == "cancel":
                self.cancelled.append(eid)
                final = {**answers[-1], "status": "CANCELLED"}
                self.scripts[eid] = [final]
                return httpx.Response(200, json={"data": final})
            answer = answers.pop(0) if len(answers) > 1 else answers[0]
            self.gets[eid] = self.gets.get(eid, 0) + 1
            self.served.notify_all()
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json={"data": answer})


@pytest.fixture
def scripted() -> Iterator[ScriptedCoordinator]:
    coordinator = ScriptedCoordinator()
    yield coordinator
    coordinator.client.close()


@pytest.fixture
def wait_until() -> Callable[..., None]:
    """Wait until `predicate()` holds (checking every 5 ms), failing after `timeout` seconds."""

    def wait(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or predicate}")
            time.sleep(0.005)

    return wait


@pytest.fixture
def interrupt_when_waiting() -> Callable[..., threading.Thread]:
    """Press "stop" (a real SIGINT to the main thread) once it blocks in a run's wait and
    `ready()` holds: the state of the main thread is the event, not a guess of time."""
    import signal
    import sys

    main = threading.main_thread()

    def waiting() -> bool:
        frame = sys._current_frames().get(main.ident or 0)
        while frame is not None:
            if frame.f_code.co_name == "wait_for" and frame.f_code.co_filename.endswith(
                "_kernel.py"
            ):
                return True
            frame = frame.f_back
        return False

    def start(ready: Callable[[], bool] = lambda: True) -> threading.Thread:
        def press() -> None:
            deadline = time.monotonic() + 30
            while not (waiting() and ready()) and time.monotonic() < deadline:
                time.sleep(0.005)
            signal.pthread_kill(main.ident or 0, signal.SIGINT)

        thread = threading.Thread(target=press, daemon=True)
        thread.start()
        return thread

    return start


@pytest.fixture
def nb_settings() -> Iterator[Any]:
    """The notebook settings, restored after the test."""
    from dataclasses import fields, replace

    from scaimind_nb import _evaluate

    saved = replace(_evaluate.settings)
    yield _evaluate.settings
    for field in fields(saved):
        setattr(_evaluate.settings, field.name, getattr(saved, field.name))
    _evaluate.close_clients()


@pytest.fixture
def shell(nb_settings: Any) -> Iterator[Any]:
    """A bare in-process IPython shell (no extension): `capture_output()` records its displays."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    from scaimind_nb import _progress

    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    instance = InteractiveShell.instance(config=config)
    _progress._cell_board = None  # a new shell may reuse the id of the last test's one
    yield instance
    _progress._cell_board = None
    InteractiveShell.clear_instance()


@pytest.fixture
def ip(coordinator: Any, monkeypatch: pytest.MonkeyPatch, shell: Any) -> Iterator[Any]:
    """An in-process IPython shell with `%load_ext scaimind_nb`, talking to `coordinator`."""
    monkeypatch.setenv("SCAIGRID_HOST", coordinator.url)
    monkeypatch.setenv("SCAIGRID_API_KEY", coordinator.api_key)
    shell.extension_manager.load_extension("scaimind_nb")
    shell.run_line_magic("config", "ScaimindMagics.poll_interval = 0.2")
    yield shell
    shell.extension_manager.unload_extension("scaimind_nb")


@pytest.fixture
def nb_client(coordinator: Any) -> Iterator[Client]:
    with Client(coordinator.url, coordinator.api_key) as client:
        yield client


class SlowModel(NamedTuple):
    job_id: str
    model_uri: str
    benchmark: dict[str, Any]
    total: int


@pytest.fixture
def slow_model(coordinator: Any, unique: str) -> SlowModel:
    """A model answering one prompt every 0.25 s over 40 prompts (RUNNING for ~10 s)."""
    from scaimind_local.testing import write_custom_dataset, write_model

    uri = write_model(
        coordinator.drive_root,
        f"org/models/slow-{unique}",
        options={"default": "x", "delay": 0.25},
    )
    rows = [{"prompt": f"q{i}", "reference": "x" if i % 2 else "y"} for i in range(40)]
    dataset = write_custom_dataset(coordinator.drive_root, f"org/eval/slow-{unique}.jsonl", rows)
    job_id = f"job_slow_{unique}"
    coordinator.register_job(job_id, uri)
    return SlowModel(job_id, uri, {"name": f"custom-slow-{unique}", "dataset": dataset}, 40)


ARITH_ROWS = [{"prompt": f"{a}+{b}=", "reference": str(a + b)} for a in range(3) for b in range(3)]


class Checkpoints(NamedTuple):
    job_id: str
    models: dict[str, str]
    benchmark: dict[str, Any]
    right: dict[str, set[str]]
    """The item ids (line numbers) each checkpoint answers right."""


@pytest.fixture
def checkpoints(coordinator: Any, unique: str) -> Checkpoints:
    """Two checkpoints on 9 arithmetic items: step-1 gets items 1-4 right, step-2 items 3-9."""
    from scaimind_local.testing import write_custom_dataset, write_model

    dataset = write_custom_dataset(
        coordinator.drive_root, f"org/eval/arith-{unique}.jsonl", ARITH_ROWS
    )
    right = {"step-1": {1, 2, 3, 4}, "step-2": {3, 4, 5, 6, 7, 8, 9}}
    models = {}
    for step, items in right.items():
        answers = {
            r["prompt"]: r["reference"] if i + 1 in items else "?" for i, r in enumerate(ARITH_ROWS)
        }
        models[step] = write_model(
            coordinator.drive_root, f"org/models/{step}-{unique}", options={"answers": answers}
        )
    job_id = f"job_ckpt_{unique}"
    coordinator.register_job(job_id, models["step-1"])
    return Checkpoints(
        job_id,
        models,
        {"name": f"custom-arith-{unique}", "dataset": dataset},
        {step: {str(i) for i in items} for step, items in right.items()},
    )
