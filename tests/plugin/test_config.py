"""Configuration: ini paths from the ini file, --collect-only sends nothing, bad values break only gate sessions."""

from __future__ import annotations

import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[2] / "examples" / "gates"


@pytest.fixture
def example(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The examples/gates suite copied under pytester's folder (run from that folder, its parent)."""
    for name in ("SCAIGRID_HOST", "SCAIGRID_API_KEY", "SCAIMIND_JOB", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)
    target = pytester.path / "gates"
    shutil.copytree(
        EXAMPLE, target, ignore=shutil.ignore_patterns(".pytest_cache", "__pycache__", ".scaimind")
    )
    return target


def test_ini_paths_resolve_against_the_ini_file_not_the_working_directory(pytester, example):
    result = pytester.runpytest("gates", "--scaimind-job=job_demo", "--scaimind-report=out.md")
    result.assert_outcomes(passed=6)  # the model and the baseline were found from the parent
    assert not (pytester.path / "drive").exists()  # no empty drive where pytest was started
    assert (pytester.path / "out.md").exists()  # a command-line path: the working directory's
    text = (pytester.path / "out.md").read_text()
    assert "- baseline: `baseline.json`" in text  # relative to the rootdir, gates/
    assert (example / ".scaimind" / "history.jsonl").exists()  # the default: in the rootdir
    assert "local (embedded, db .pytest_cache/d/scaimind-local/coordinator.sqlite" in text


def test_collect_only_starts_no_coordinator(pytester, example):
    ini = example / "pytest.ini"
    ini.write_text(ini.read_text() + "scaimind_local_db = state/coordinator.sqlite\n")
    result = pytester.runpytest(
        "gates", "--scaimind-job=job_demo", "--collect-only", "-q", "--scaimind-report=r.md"
    )
    assert result.ret == pytest.ExitCode.OK
    assert not (example / "state").exists()
    assert not (example / ".pytest_cache" / "d" / "scaimind-local").exists()
    assert not (pytester.path / "r.md").exists() and not (example / ".scaimind").exists()
    assert "scaimind quality gates" not in result.stdout.str()


class _Counting(http.server.BaseHTTPRequestHandler):
    requests: list[str] = []

    def _any(self) -> None:
        type(self).requests.append(f"{self.command} {self.path}")
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _any

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def counting_host() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server that answers 503 to everything and records each request."""
    _Counting.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Counting.requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_collect_only_sends_nothing(pytester, monkeypatch, counting_host):
    url, requests = counting_host
    monkeypatch.setenv("SCAIGRID_API_KEY", "sk-test-key")
    pytester.makepyfile(
        test_g="from pytest_scaimind import assert_benchmark\n"
        "def test_g():\n    assert_benchmark('mmlu', min_score=0.5)\n"
    )
    args = ["--scaimind-job=job_x", f"--scaimind-host={url}", "--scaimind-timeout=5"]
    assert pytester.runpytest(*args, "--collect-only").ret == pytest.ExitCode.OK
    assert requests == []
    pytester.runpytest(*args)  # the same session without --collect-only does talk to it
    assert requests


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"SCAIMIND_TIMEOUT": "-3"},
            "env SCAIMIND_TIMEOUT must be a positive number of seconds, got '-3'",
        ),
        (
            {"SCAIMIND_REUSE": "sometimes"},
            "env SCAIMIND_REUSE must be one of auto, never, only, got 'sometimes'",
        ),
        (
            {"SCAIMIND_INCONCLUSIVE": "maybe"},
            "env SCAIMIND_INCONCLUSIVE must be one of fail, pass, skip, got 'maybe'",
        ),
    ],
)
def test_a_bad_environment_variable_breaks_only_gate_sessions(pytester, monkeypatch, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SCAIMIND_JOB", raising=False)
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    pytester.runpytest().assert_outcomes(passed=1)  # the plugin is inactive: nothing is read
    assert pytester.runpytest("--help").ret == pytest.ExitCode.OK
    assert not (pytester.path / ".scaimind").exists()  # and nothing is written
    monkeypatch.setenv("SCAIMIND_JOB", "job_x")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert errors == [f"ERROR: {message}"]


def test_a_bad_ini_value_names_the_ini_key(pytester, monkeypatch):
    monkeypatch.delenv("SCAIMIND_TIMEOUT", raising=False)
    pytester.makeini("[pytest]\nscaimind_timeout = soon\n")
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    pytester.runpytest().assert_outcomes(passed=1)
    result = pytester.runpytest("--scaimind-job=job_x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: ini scaimind_timeout must be a number of seconds, got 'soon'"]
    )


def test_history_none_and_paths_from_the_command_line(pytester, example):
    result = pytester.runpytest(
        "gates", "--scaimind-job=job_demo", "--scaimind-history=none", "--scaimind-report=r.json"
    )
    result.assert_outcomes(passed=6)
    assert not (example / ".scaimind").exists()
    assert (pytester.path / "r.json").exists()


def test_the_checklist_command_serves_an_embedded_sessions_evaluations_again(pytester, example):
    import json
    import os
    import subprocess
    import sys

    import scaimind_nb

    result = pytester.runpytest("gates", "--scaimind-job=job_demo", "--scaimind-report=r.json")
    result.assert_outcomes(passed=6)
    data = json.loads((pytester.path / "r.json").read_text())
    db = data["coordinator"]["embedded"]["db"]
    [evaluation] = data["evaluations"]
    key = "sk-test-serve-again"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scaimind_local",
            "serve",
            "--db",
            db,
            "--port",
            "0",
            "--api-key",
            key,
        ],
        cwd=example,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        url = None
        for line in proc.stdout:  # the server prints its URL once it listens
            if line.startswith("export SCAIGRID_HOST="):
                url = line.split("=", 1)[1].strip()
                break
        assert url is not None
        with scaimind_nb.Client(url, key) as client:
            assert client.get(evaluation["evaluation_id"]).status is scaimind_nb.Status.COMPLETED
            samples = list(client.samples(evaluation["evaluation_id"]))
        assert len(samples) == 30  # 10 support questions and 20 sums
        assert evaluation["links"]["samples"].endswith(
            f"/evaluations/{evaluation['evaluation_id']}/samples"
        )
    finally:
        proc.terminate()
        proc.wait(30)


def test_the_docs_show_the_checklist_the_example_suite_writes(pytester, example):
    import re

    root = Path(__file__).parents[2]

    def shown(path: Path, after: str) -> str:
        text = path.read_text()
        return text[text.index(after) :].split("````markdown\n", 1)[1].split("\n````", 1)[0]

    def normalise(text: str) -> str:
        text = re.sub(r"eval_[0-9a-f]{24}", "eval_<id>", text)
        text = re.sub(r"\d{8}T\d{6}Z-[0-9a-f]{6}", "<run>", text)
        text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "<time>", text)
        # the model's digest covers its python target's source (scaimind_local.testing)
        text = re.sub(r"(- model: .*, digest )`sha256:[0-9a-f]{64}`", r"\1<digest>", text)
        for fact in ("git", "versions", "platform"):
            text = re.sub(rf"^- {fact}: .*$", f"- {fact}: <{fact}>", text, flags=re.M)
        return text.rstrip("\n")

    pytester.runpytest("gates", "--scaimind-job=job_demo", "--scaimind-report=release.md")
    written = normalise((pytester.path / "release.md").read_text())
    assert normalise(shown(root / "docs" / "pytest.md", "### Reports")) == written
    excerpt = normalise(shown(root / "README.md", "release checklist of the example suite"))
    assert written.startswith(excerpt) and "- [x] `test_release.py::" in excerpt


def test_without_the_cache_provider_the_embedded_database_is_said_to_be_gone(pytester, example):
    result = pytester.runpytest(
        "gates", "--scaimind-job=job_demo", "-p", "no:cacheprovider", "--scaimind-report=r.md"
    )
    result.assert_outcomes(passed=6)
    text = (pytester.path / "r.md").read_text()
    assert "coordinator: local (embedded, temporary, db " in text
    assert "its temporary database ended with the session" in text
    assert "scaimind-local serve --db" not in text
