"""Fixtures for the plugin's integration tests: a scripted model and datasets on the shared coordinator."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from scaimind_local import LocalCoordinator

# 20 questions, the model gets 19 right (0.95); "qa" is 4 questions with 3 right (0.75)
BIG_ROWS = [{"prompt": f"q{i}?", "reference": f"a{i}"} for i in range(20)]
QA_ROWS = [{"prompt": f"p{i}?", "reference": f"r{i}"} for i in range(4)]
ANSWERS = {**{f"q{i}?": f"a{i}" for i in range(19)}, **{f"p{i}?": f"r{i}" for i in range(3)}}


@dataclass
class GateProject:
    """A pytester project wired to a live coordinator, a registered job and its scripted model."""

    pytester: pytest.Pytester
    coordinator: LocalCoordinator
    job_id: str
    model_uri: str
    big: str
    qa: str

    def args(self, *extra: str) -> list[str]:
        return [
            f"--scaimind-job={self.job_id}",
            f"--scaimind-host={self.coordinator.url}",
            "--scaimind-poll-interval=0.05",
            *extra,
        ]

    def write_suite(self, extra: str = "", big_n: int | None = None) -> None:
        """The standard gate suite: 5 gates pass on big (0.95) and qa (0.75), test_qa_fails
        fails, one plain test passes; `big_n` sets num_samples on test_big_passes alone."""
        n = f", num_samples={big_n}" if big_n else ""
        self.pytester.makepyfile(
            test_release=f'''
import pytest
from pytest_scaimind import assert_benchmark

BIG = "{self.big}"
QA = "{self.qa}"

def test_big_passes():
    result = assert_benchmark("custom-big", dataset=BIG, min_score=0.9{n})
    assert result.num_samples == {big_n or 20}

def test_qa_fails():
    assert_benchmark("custom-qa", dataset=QA, min_score=0.8)

def test_qa_shared_spec_passes():
    assert_benchmark("custom-qa", dataset=QA, min_score=0.7)

@pytest.mark.parametrize("floor", [0.5, 0.6])
def test_parametrized(floor):
    assert_benchmark("custom-big", dataset=BIG, min_score=floor)

def test_not_a_gate():
    assert 1 + 1 == 2
{extra}
'''
        )

    def run(self, *extra: str) -> pytest.RunResult:
        """Run the project's tests in-process against the coordinator."""
        return self.pytester.runpytest(*self.args(*extra))

    def submissions(self, job_id: str | None = None) -> int:
        """How many evaluations the coordinator holds for the job (counted in its SQLite file)."""
        with sqlite3.connect(self.coordinator.db_path) as conn:
            row = conn.execute(
                "SELECT COUNT(*) FROM evaluations WHERE job_id = ?", (job_id or self.job_id,)
            ).fetchone()
        return int(row[0])

    def evaluation_ids(self) -> list[str]:
        with sqlite3.connect(self.coordinator.db_path) as conn:
            rows = conn.execute(
                "SELECT id FROM evaluations WHERE job_id = ? ORDER BY seq", (self.job_id,)
            )
            return [r[0] for r in rows]

    def submitted(self) -> list[list[dict[str, Any]]]:
        """The benchmark specs of each evaluation of the job, oldest first (from the SQLite file)."""
        with sqlite3.connect(self.coordinator.db_path) as conn:
            rows = conn.execute(
                "SELECT benchmarks FROM evaluations WHERE job_id = ? ORDER BY seq", (self.job_id,)
            )
            return [
                [{k: v for k, v in b.items() if k != "data"} for b in json.loads(r[0])]
                for r in rows
            ]

    def rows(self, uri: str) -> list[dict[str, Any]]:
        """The records of a dataset on the drive."""
        file = self.coordinator.drive_root / uri.removeprefix("scaidrive://")
        return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]

    def rewrite(self, uri: str, rows: list[dict[str, Any]]) -> None:
        """Replace a dataset's content under the same URI."""
        from scaimind_local.testing import write_custom_dataset

        write_custom_dataset(self.coordinator.drive_root, uri, rows)

    def status(self, evaluation_id: str) -> str:
        with sqlite3.connect(self.coordinator.db_path) as conn:
            row = conn.execute("SELECT status FROM evaluations WHERE id = ?", (evaluation_id,))
            return str(row.fetchone()[0])

    def model(self, path: str, **options: Any) -> str:
        """Another scripted model on the drive (e.g. a slow or failing one)."""
        from scaimind_local.testing import write_model

        return write_model(
            self.coordinator.drive_root, path, options={"answers": ANSWERS, **options}
        )


@pytest.fixture(scope="session", autouse=True)
def _import_once(coordinator: LocalCoordinator) -> None:
    """Load the whole client stack (httpx, httpcore, ...) in the outer process with one real call:
    pytester's in-process runs drop modules first imported inside them, and a re-imported httpx
    or httpcore would not recognise the old one's objects and exceptions."""
    import scaimind_nb
    from pytest_scaimind import _evaluations, _session  # noqa: F401

    with scaimind_nb.Client(coordinator.url, coordinator.api_key) as client:
        client.list_benchmarks()
        with pytest.raises(scaimind_nb.NotFoundError):
            client.get_job("job_that_does_not_exist")
    with (
        scaimind_nb.Client("http://127.0.0.1:9", "k", max_retries=0) as client,
        pytest.raises(scaimind_nb.APIConnectionError),
    ):
        client.get("eval_x")


@pytest.fixture
def gate_project(
    pytester: pytest.Pytester,
    coordinator: LocalCoordinator,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
    scaimind_api_key: str,
) -> GateProject:
    """A fresh job (own model and datasets) on the session coordinator, key in the environment."""
    from scaimind_local.testing import write_custom_dataset, write_model

    monkeypatch.setenv("SCAIGRID_API_KEY", scaimind_api_key)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    for name in (
        "SCAIGRID_HOST",
        "SCAIMIND_JOB",
        "SCAIMIND_MODEL_URI",
        "SCAIMIND_REPORT",
        "SCAIMIND_BASELINE",
    ):
        monkeypatch.delenv(name, raising=False)
    drive = coordinator.drive_root
    model_uri = write_model(drive, f"org/models/gate-{unique}", options={"answers": ANSWERS})
    big = write_custom_dataset(drive, f"org/eval/big-{unique}.jsonl", BIG_ROWS)
    qa = write_custom_dataset(drive, f"org/eval/qa-{unique}.jsonl", QA_ROWS)
    job_id = f"job_gate_{unique}"
    coordinator.register_job(job_id, model_uri)
    return GateProject(pytester, coordinator, job_id, model_uri, big, qa)


@pytest.fixture
def front(coordinator: LocalCoordinator) -> Iterator[Any]:
    """Make `scaimind_local.testing.Proxy`s in front of the session coordinator (an older or a
    vanishing one); all are stopped after the test."""
    from scaimind_local.testing import Proxy

    made: list[Proxy] = []

    def make(**kwargs: Any) -> Proxy:
        made.append(Proxy(coordinator.url, **kwargs))
        return made[-1]

    yield make
    for proxy in made:
        proxy.stop()
