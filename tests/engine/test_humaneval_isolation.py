"""No silent downgrade: where isolation cannot be set up, humaneval is refused unless allowed.

The probe is made to fail for real, by pointing the coordinator at a bubblewrap that does not
exist (the `sandbox_bwrap` setting, or $SCAIMIND_BWRAP for `scaimind-local serve`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scaimind_local import LocalCoordinator
from scaimind_local._benchmarks.humaneval import default_dataset, read_problems
from scaimind_local.testing import write_model
from scaimind_nb import BadRequestError, Client, Evaluation

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


def run_humaneval(
    tmp_path: Path, api_key: str, **coordinator: Any
) -> tuple[Evaluation | BadRequestError, int]:
    """Submit humaneval to a fresh coordinator: (the finished evaluation or the submit's error,
    how many evaluations the coordinator then holds)."""
    with (
        LocalCoordinator(
            tmp_path / "db.sqlite", tmp_path / "drive", api_key, **coordinator
        ) as coord,
        Client(host=coord.url, api_key=coord.api_key) as client,
    ):
        uri, benchmark = humaneval_setup(coord)
        outcome: Evaluation | BadRequestError
        try:
            outcome = client.wait(
                client.submit("job_iso", uri, [benchmark]).evaluation_id, timeout=120
            )
        except BadRequestError as exc:
            outcome = exc
        return outcome, client.list_evaluations().total_count


def test_without_isolation_a_humaneval_submit_is_refused_saying_why_and_how(
    tmp_path: Path, scaimind_api_key: str
) -> None:
    refused, stored = run_humaneval(tmp_path, scaimind_api_key, settings={"sandbox_bwrap": MISSING})
    assert isinstance(refused, BadRequestError) and refused.status_code == 400
    assert stored == 0  # nothing was queued
    message = str(refused)
    assert "bubblewrap is not installed" in message and MISSING in message
    assert "apt-get install bubblewrap" in message and "--allow-unisolated-code" in message


def test_allowed_unisolated_code_runs_and_the_record_says_so(
    tmp_path: Path, scaimind_api_key: str
) -> None:
    done, _ = run_humaneval(
        tmp_path, scaimind_api_key, settings={"sandbox_bwrap": MISSING}, allow_unisolated_code=True
    )
    assert isinstance(done, Evaluation) and done.status.value == "COMPLETED"
    result = done.result("humaneval")
    assert result.score == 1.0 and result.extra["isolated"] is False
    assert result.extra["isolation"].startswith("none: the operator allowed")
    assert "--allow-unisolated-code" in result.extra["isolation"]


@pytest.mark.isolation
def test_isolated_runs_say_so_too(tmp_path: Path, scaimind_api_key: str) -> None:
    done, _ = run_humaneval(tmp_path, scaimind_api_key)
    assert isinstance(done, Evaluation)
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
        pytest.param(
            (), None, "# isolation: kernel namespaces (bubblewrap", marks=pytest.mark.isolation
        ),
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
