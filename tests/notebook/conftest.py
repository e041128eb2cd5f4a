"""Fixtures of the notebook layer: an in-process IPython shell, clients and Evaluation builders.

- `make_eval(...)`: a real `Evaluation` snapshot (status, progress, results) without a server.
- `ip`: an in-process `InteractiveShell` with `scaimind_nb` loaded and pointed at `coordinator`.
- `nb_client`: a `Client` on the session coordinator.
- `slow_model`: `(job_id, model_uri, benchmark)` whose evaluation stays RUNNING for a few seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, NamedTuple

import pytest

from scaimind_nb._models import BenchmarkProgress, BenchmarkResult, Evaluation, Status


def make_eval(
    status: str = "RUNNING",
    *,
    evaluation_id: str = "eval_1",
    progress: tuple[tuple[str, int, int | None], ...] = (),
    results: dict[str, dict[str, float]] | None = None,
    error: str | None = None,
    checkpoint_id: str = "",
) -> Evaluation:
    """An Evaluation snapshot as the normaliser would build it."""
    now = datetime.now(UTC)
    return Evaluation(
        evaluation_id=evaluation_id,
        job_id="job_1",
        model_uri="scaidrive://org/models/m",
        checkpoint_id=checkpoint_id,
        status=Status(status),
        results=tuple(BenchmarkResult(name, metrics) for name, metrics in (results or {}).items()),
        error=error,
        created_at=now,
        updated_at=now,
        raw={},
        progress=tuple(BenchmarkProgress(b, c, t) for b, c, t in progress),
    )


class SlowModel(NamedTuple):
    job_id: str
    model_uri: str
    benchmark: dict[str, Any]


@pytest.fixture
def slow_model(coordinator: Any, unique: str) -> SlowModel:
    """A model that answers one prompt every 0.4 s over 8 prompts: RUNNING for ~3 s."""
    from scaimind_local.testing import write_custom_dataset, write_model

    uri = write_model(
        coordinator.drive_root, f"org/models/slow-{unique}", options={"default": "x", "delay": 0.4}
    )
    rows = [{"prompt": f"q{i}", "reference": "x" if i % 2 else "y"} for i in range(8)]
    dataset = write_custom_dataset(coordinator.drive_root, f"org/eval/slow-{unique}.jsonl", rows)
    job_id = f"job_slow_{unique}"
    coordinator.register_job(job_id, uri)
    return SlowModel(job_id, uri, {"name": f"custom-slow-{unique}", "dataset": dataset})


@pytest.fixture
def nb_client(coordinator: Any) -> Iterator[Any]:
    from scaimind_nb import Client

    with Client(coordinator.url, coordinator.api_key) as client:
        yield client


@pytest.fixture
def nb_settings() -> Iterator[Any]:
    """The notebook settings, restored after the test."""
    from dataclasses import replace

    from scaimind_nb import _evaluate

    saved = replace(_evaluate.settings)
    yield _evaluate.settings
    for field in ("host", "poll_interval", "progress", "display_limit"):
        setattr(_evaluate.settings, field, getattr(saved, field))
    _evaluate.close_clients()


@pytest.fixture
def ip(coordinator: Any, monkeypatch: pytest.MonkeyPatch, nb_settings: Any) -> Iterator[Any]:
    """An in-process IPython shell with `%load_ext scaimind_nb`, talking to `coordinator`."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    monkeypatch.setenv("SCAIGRID_HOST", coordinator.url)
    monkeypatch.setenv("SCAIGRID_API_KEY", coordinator.api_key)
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    shell.extension_manager.load_extension("scaimind_nb")
    shell.run_line_magic("config", "ScaimindMagics.poll_interval = 0.2")
    yield shell
    shell.extension_manager.unload_extension("scaimind_nb")
    InteractiveShell.clear_instance()
