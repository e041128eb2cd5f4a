"""Shared fixtures: a real `scaimind_local` coordinator over loopback with a real SQLite file.

- `scaimind_api_key`: a random key for this session (never a real one from the environment).
- `coordinator`: one running `LocalCoordinator` for the session (workers=2); tests must use
  their own job ids and drive paths (`unique`) so they stay independent.
- `fresh_coordinator`: a new coordinator (own db and drive) for tests that need isolation.
- `scored_setup`: `(coordinator, job_id, model_uri, benchmark, expected_score)` where a
  `ScriptedModel` gets 3 of 4 answers of a custom dataset right (exact_match 0.75).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest

if TYPE_CHECKING:
    from scaimind_local import LocalCoordinator

SCORED_ROWS = [
    {"prompt": "2+2=", "reference": "4"},
    {"prompt": "capital of France?", "reference": "Paris"},
    {"prompt": "3*3=", "reference": "9"},
    {"prompt": "opposite of hot?", "reference": "cold"},
]
SCORED_ANSWERS = {
    "2+2=": "4",
    "capital of France?": " paris ",
    "3*3=": "9",
    "opposite of hot?": "warm",
}


def pytest_configure(config: pytest.Config) -> None:
    """Provision the suite's outside needs once (controller only), before any test is collected."""
    if hasattr(config, "workerinput"):
        return
    from _provision import provision

    reporter = config.pluginmanager.get_plugin("terminalreporter")

    def say(line: str) -> None:
        if reporter is not None:
            reporter.write_line(line)

    config.stash[_MISSING] = provision(say)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests whose outside needs could not be provisioned skip, naming what is missing."""
    missing = config.stash.get(_MISSING, {})
    for item in items:
        for marker, reason in missing.items():
            if item.get_closest_marker(marker) is not None:
                item.add_marker(pytest.mark.skip(reason=reason))


_MISSING = pytest.StashKey[dict[str, str]]()


class ScoredSetup(NamedTuple):
    coordinator: LocalCoordinator
    job_id: str
    model_uri: str
    benchmark: dict[str, Any]
    expected_score: float


@pytest.fixture(scope="session")
def scaimind_api_key() -> str:
    """The API key the test coordinators use: random per session."""
    return "sk-test-" + secrets.token_urlsafe(18)


@pytest.fixture
def unique() -> str:
    """A short unique suffix for job ids and drive paths on the shared coordinator."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def coordinator(
    tmp_path_factory: pytest.TempPathFactory, scaimind_api_key: str
) -> Iterator[LocalCoordinator]:
    """A session-wide coordinator on loopback: tmp SQLite db and drive root, 2 workers."""
    from scaimind_local import LocalCoordinator

    base = tmp_path_factory.mktemp("coordinator")
    with LocalCoordinator(
        base / "scaimind.sqlite", base / "drive", api_key=scaimind_api_key, workers=2
    ) as coord:
        yield coord


@pytest.fixture
def fresh_coordinator(tmp_path: Any, scaimind_api_key: str) -> Iterator[LocalCoordinator]:
    """A coordinator of its own (db, drive, queue) for one test."""
    from scaimind_local import LocalCoordinator

    with LocalCoordinator(
        tmp_path / "scaimind.sqlite", tmp_path / "drive", api_key=scaimind_api_key, workers=2
    ) as coord:
        yield coord


@pytest.fixture
def scored_setup(coordinator: LocalCoordinator, unique: str) -> ScoredSetup:
    """A registered COMPLETED job whose scripted model scores exactly 0.75 on `benchmark`."""
    from scaimind_local.testing import write_custom_dataset, write_model

    model_uri = write_model(
        coordinator.drive_root, f"org/models/scripted-{unique}", options={"answers": SCORED_ANSWERS}
    )
    dataset = write_custom_dataset(
        coordinator.drive_root, f"org/eval/qa-{unique}.jsonl", SCORED_ROWS
    )
    job_id = f"job_{unique}"
    coordinator.register_job(job_id, model_uri)
    benchmark = {"name": f"custom-qa-{unique}", "dataset": dataset}
    return ScoredSetup(coordinator, job_id, model_uri, benchmark, 0.75)
