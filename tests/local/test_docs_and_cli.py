"""docs/coordinator.md's snippets and the CLI, run against a live `scaimind-local serve`."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scaimind_local.testing import write_custom_dataset, write_model

from ._util import serve

DOC = Path(__file__).parents[2] / "docs" / "coordinator.md"
ROWS = [
    {"prompt": "2+2=", "reference": "4"},
    {"prompt": "capital of France?", "reference": "Paris"},
    {"prompt": "3*3=", "reference": "9"},
    {"prompt": "opposite of hot?", "reference": "cold"},
]
ANSWERS = {"2+2=": "4", "capital of France?": "Paris", "3*3=": "9", "opposite of hot?": "warm"}


def snippets() -> dict[str, str]:
    """`<!-- snippet: NAME -->` followed by a fenced block, for every snippet in the doc."""
    found = re.findall(r"<!-- snippet: ([\w-]+) -->\n```\w+\n(.*?)```", DOC.read_text(), re.S)
    return dict(found)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("docs")
    write_model(tmp / "drive", "org/models/demo", options={"answers": ANSWERS})
    write_custom_dataset(tmp / "drive", "org/eval/qa.jsonl", ROWS)
    key = "sk-docs-" + secrets.token_hex(12)
    proc, url = serve(tmp, key, "--workers", "2")
    env = {**os.environ, "SCAIGRID_HOST": url, "SCAIGRID_API_KEY": key}
    yield env
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    assert key not in err


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "scaimind_local", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)


def run(env: dict[str, str], name: str) -> str:
    code = snippets()[name]
    if name.startswith("curl"):
        cmd = ["bash", "-c", code]
    elif name.startswith("httpx"):
        cmd = [sys.executable, "-c", code]
    else:
        cmd = ["node", "--input-type=module", "-e", code]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_the_doc_has_every_snippet() -> None:
    names = set(snippets())
    assert names == {
        "curl-submit",
        "curl-poll",
        "curl-list",
        "httpx-poll",
        "fetch-submit-poll",
        "fetch-list",
    }


def test_snippets_run_unchanged(server: dict[str, str]) -> None:
    added = cli(server, "jobs", "add", "job_abc", "--model-uri", "scaidrive://org/models/demo")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["status"] == "COMPLETED"

    submitted = json.loads(run(server, "curl-submit"))["data"]
    assert submitted["status"] == "QUEUED"
    env = {**server, "EVALUATION_ID": submitted["evaluation_id"]}
    assert run(env, "httpx-poll").split() == ["custom-qa", "0.75"]
    polled = json.loads(run(env, "curl-poll"))["data"]
    assert polled["status"] == "COMPLETED" and polled["results"][0]["num_samples"] == "4"

    eid, status, score = run(server, "fetch-submit-poll").split()
    assert eid.startswith("eval_") and (status, score) == ("COMPLETED", "0.75")

    listed = json.loads(run(server, "curl-list"))["data"]
    assert [e["job_id"] for e in listed["evaluations"]] == [eid, submitted["evaluation_id"]]
    lines = run(server, "fetch-list").splitlines()
    assert lines[0] == listed["total_count"] == "2"
    assert lines[1] == f"{eid} COMPLETED"


def test_cli_jobs_and_list(server: dict[str, str]) -> None:
    added = cli(
        server, "jobs", "add", "job_cli", "--model-uri", "scaidrive://m", "--status", "RUNNING"
    )
    assert added.returncode == 0, added.stderr
    got = cli(server, "jobs", "get", "job_cli")
    assert json.loads(got.stdout)["status"] == "RUNNING"
    missing = cli(server, "jobs", "get", "job_nope")
    assert missing.returncode != 0
    assert "HTTP 404" in missing.stderr and "job_nope" in missing.stderr
    listed = cli(server, "list", "--limit", "1")
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) <= 1
    no_env = {k: v for k, v in server.items() if not k.startswith("SCAIGRID_")}
    assert "set SCAIGRID_HOST and SCAIGRID_API_KEY" in cli(no_env, "list").stderr
    wrong = cli({**server, "SCAIGRID_API_KEY": "nope"}, "list")
    assert "HTTP 401" in wrong.stderr


def test_serve_prints_a_generated_key_once_and_a_given_key_never(tmp_path: Path) -> None:
    proc, url = serve(tmp_path / "gen", None)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().strip() == f"export SCAIGRID_HOST={url}"
    key = proc.stdout.readline().strip().removeprefix("export SCAIGRID_API_KEY=")
    assert len(key) >= 24
    assert httpx.get(url + "/openapi.json", headers={"Authorization": f"Bearer {key}"}).is_success
    proc.terminate()
    proc.wait(10)
    assert key not in proc.stdout.read() + proc.stderr.read()

    given = "sk-given-" + secrets.token_hex(8)
    proc, url = serve(tmp_path / "given", given)
    httpx.get(url + "/benchmarks", headers={"Authorization": "Bearer " + given[:-1]})
    proc.terminate()
    proc.wait(10)
    assert proc.stdout is not None and proc.stderr is not None
    out = proc.stdout.read() + proc.stderr.read()
    assert given not in out
    assert "export SCAIGRID_HOST=" + url in out


def test_demo_delegates_to_the_demo_module_or_says_it_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import types

    from scaimind_local._cli import main

    monkeypatch.setitem(sys.modules, "scaimind_local._demo", None)
    with pytest.raises(SystemExit, match="the demo is not available"):
        main(["demo"])
    calls: list[list[str]] = []
    fake = types.ModuleType("scaimind_local._demo")
    fake.main = lambda argv: calls.append(argv) or 3  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "scaimind_local._demo", fake)
    assert main(["demo", "--fast", "x"]) == 3
    assert calls == [["--fast", "x"]]
