"""Helpers for the coordinator's tests: an authenticated httpx client, submit and a poller."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from scaimind_local import LocalCoordinator

API = "/v1/modules/scaimind"


def client_for(coord: LocalCoordinator) -> httpx.Client:
    """An httpx client on the coordinator's API prefix with its bearer key."""
    return httpx.Client(
        base_url=coord.url + API,
        headers={"Authorization": f"Bearer {coord.api_key}"},
        timeout=30,
    )


def wait_for(
    client: httpx.Client,
    evaluation_id: str,
    until: Callable[[dict[str, Any]], bool] = lambda r: (
        r["status"] in ("COMPLETED", "FAILED", "CANCELLED")
    ),
    timeout: float = 30,
) -> dict[str, Any]:
    """Poll GET until `until(record)` holds; fail the test with the last record otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        record: dict[str, Any] = client.get(f"/evaluations/{evaluation_id}").json()["data"]
        if until(record):
            return record
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting on {evaluation_id}: {record}")
        time.sleep(0.02)


def submit(client: httpx.Client, job_id: str, *benchmarks: Any, **body: Any) -> httpx.Response:
    return client.post(
        "/evaluations", json={"job_id": job_id, "benchmarks": list(benchmarks), **body}
    )


def serve(tmp_path: Path, api_key: str | None, *args: str) -> tuple[subprocess.Popen[str], str]:
    """Start `scaimind-local serve` on a free port; return the process and its URL once healthy."""
    cmd = [sys.executable, "-m", "scaimind_local", "serve", "--port", "0"]
    cmd += ["--db", str(tmp_path / "serve.sqlite"), "--drive-root", str(tmp_path / "drive")]
    if api_key:
        cmd += ["--api-key", api_key]
    env = {k: v for k, v in os.environ.items() if k != "SCAIGRID_API_KEY"}
    proc = subprocess.Popen(
        [*cmd, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "serving http://" in line, line + (proc.stderr.read() if proc.stderr else "")
    url = line.split()[2]
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail("scaimind-local serve did not come up")
        time.sleep(0.05)
