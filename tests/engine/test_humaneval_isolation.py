"""No silent downgrade: where isolation cannot be set up, humaneval is refused unless allowed.

The probe is made to fail for real, by pointing the coordinator at a bubblewrap that does not
exist (the `sandbox_bwrap` setting, or $SCAIMIND_BWRAP for `scaimind-local serve`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scaimind_local import LocalCoordinator
from scaimind_local._benchmarks.humaneval import default_dataset, read_problems
from scaimind_local.testing import write_model
from scaimind_nb import BadRequestError, Client

PROBLEMS = read_problems(default_dataset())[:2]
MISSING = "/nonexistent/bwrap"


def humaneval_setup(coordinator: LocalCoordinator) -> tuple[str, dict[str, str]]:
    """A model answering two problems with their canonical solutions; (model_uri, benchmark)."""
    dataset = Path(coordinator.drive_root, "org/eval/two.jsonl")
    dataset.parent.mkdir(parents=True, exist_ok=True)
    dataset.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    answers = {p["prompt"]: p["canonical_solution"] for p in PROBLEMS}
    uri = write_model(coordinator.drive_root, "org/models/canon", options={"answers": answers})
    coordinator.register_job("job_iso", uri)
    return uri, {"name": "humaneval", "dataset": "scaidrive://org/eval/two.jsonl"}


ClientFor = Callable[[LocalCoordinator], Client]


@pytest.fixture
def client_for() -> Iterator[ClientFor]:
    clients: list[Client] = []

    def make(coordinator: LocalCoordinator) -> Client:
        clients.append(Client(host=coordinator.url, api_key=coordinator.api_key))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def test_without_isolation_a_humaneval_submit_is_refused_saying_why_and_how(
    tmp_path: Path, scaimind_api_key: str, client_for: ClientFor
) -> None:
    with LocalCoordinator(
        tmp_path / "db.sqlite",
        tmp_path / "drive",
        api_key=scaimind_api_key,
        settings={"sandbox_bwrap": MISSING},
    ) as coordinator:
        uri, benchmark = humaneval_setup(coordinator)
        client = client_for(coordinator)
        with pytest.raises(BadRequestError) as info:
            client.submit("job_iso", uri, [benchmark])
        assert client.list_evaluations().total_count == 0  # nothing was queued
    message = str(info.value)
    assert info.value.status_code == 400
    assert "bubblewrap is not installed" in message and MISSING in message
    assert "apt-get install bubblewrap" in message and "--allow-unisolated-code" in message


def test_allowed_unisolated_code_runs_and_the_record_says_so(
    tmp_path: Path, scaimind_api_key: str, client_for: ClientFor
) -> None:
    with LocalCoordinator(
        tmp_path / "db.sqlite",
        tmp_path / "drive",
        api_key=scaimind_api_key,
        settings={"sandbox_bwrap": MISSING},
        allow_unisolated_code=True,
    ) as coordinator:
        uri, benchmark = humaneval_setup(coordinator)
        client = client_for(coordinator)
        done = client.wait(client.submit("job_iso", uri, [benchmark]).evaluation_id, timeout=120)
    result = done.result("humaneval")
    assert done.status.value == "COMPLETED" and result.score == 1.0
    assert result.extra["isolated"] is False
    assert result.extra["isolation"].startswith("none: the operator allowed")
    assert "--allow-unisolated-code" in result.extra["isolation"]


def test_isolated_runs_say_so_too(
    tmp_path: Path, scaimind_api_key: str, client_for: ClientFor
) -> None:
    with LocalCoordinator(
        tmp_path / "db.sqlite", tmp_path / "drive", api_key=scaimind_api_key
    ) as coordinator:
        uri, benchmark = humaneval_setup(coordinator)
        client = client_for(coordinator)
        done = client.wait(client.submit("job_iso", uri, [benchmark]).evaluation_id, timeout=120)
    result = done.result("humaneval")
    assert result.score == 1.0 and result.extra["isolated"] is True
    assert result.extra["isolation"].startswith("kernel namespaces (bubblewrap")


def serve_banner(tmp_path: Path, *args: str, bwrap: str | None = None) -> str:
    """The lines `scaimind-local serve` prints before serving (it is stopped right after)."""
    env = {k: v for k, v in os.environ.items() if k not in ("SCAIGRID_API_KEY", "SCAIMIND_BWRAP")}
    if bwrap:
        env["SCAIMIND_BWRAP"] = bwrap
    cmd = [sys.executable, "-m", "scaimind_local", "serve", "--port", "0", "--api-key", "sk-x"]
    cmd += ["--db", str(tmp_path / "s.sqlite"), "--drive-root", str(tmp_path / "drive"), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("# isolation:"):  # the last line of the banner
                break
    finally:
        proc.terminate()
        proc.wait(10)
    return "".join(lines)


@pytest.mark.parametrize(
    ("args", "bwrap", "expected"),
    [
        ((), None, "# isolation: kernel namespaces (bubblewrap"),
        (
            (),
            MISSING,
            "# isolation: unavailable, so humaneval submits are refused: kernel isolation",
        ),
        (("--allow-unisolated-code",), MISSING, "# isolation: none: the operator allowed"),
    ],
    ids=["isolated", "refused", "allowed"],
)
def test_serve_prints_which_isolation_is_in_force(
    tmp_path: Path, args: tuple[str, ...], bwrap: str | None, expected: str
) -> None:
    banner = serve_banner(tmp_path, *args, bwrap=bwrap)
    assert expected in banner, banner
