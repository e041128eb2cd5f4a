"""Secrets: after a gate session, a notebook, client errors and the server's own log, every byte
written anywhere is searched for the API key: zero hits."""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ._harness import REPO, ServerProcess, run_gate_session, scored_model


def _notebook(url: str, job_id: str, model_uri: str, benchmark: dict[str, str]) -> Any:
    import nbformat

    cells = [
        "import logging, scaimind_nb\nlogging.basicConfig(level=logging.DEBUG)",
        f"run = scaimind_nb.evaluate({job_id!r}, {model_uri!r}, [{benchmark!r}], progress='text')\nrun",
        "run.to_frame()",
        "client = scaimind_nb.Client()\nclient",
        "try:\n    client.get('eval_missing')\nexcept scaimind_nb.ScaimindError as exc:\n"
        "    print(repr(exc), exc.__dict__)",
        "%load_ext scaimind_nb",
        "%scaimind get {run.evaluation.evaluation_id}",
        "%scaimind doctor",
    ]
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])


@pytest.mark.slow
def test_api_key_never_written_anywhere(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import nbformat
    from nbclient import NotebookClient

    import scaimind_nb

    key = "sk-leakcheck-" + secrets.token_urlsafe(24)
    server = ServerProcess(tmp_path, key, workers=1, log_level="debug")
    model_uri, benchmark = scored_model(server.drive_root, tag="-secret")
    server.start()
    texts: list[str] = []
    try:
        import urllib.request

        for job in ("job_secret_gate", "job_secret_nb"):
            body = f'{{"job_id": "{job}", "model_uri": "{model_uri}"}}'.encode()
            urllib.request.urlopen(
                urllib.request.Request(
                    server.url + "/v1/modules/scaimind/jobs",
                    data=body,
                    method="POST",
                    headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                ),
                timeout=10,
            ).close()

        # the gate session: JUnit XML, a Markdown and a JSON report, verbose output
        gate_dir = tmp_path / "gate"
        gate_dir.mkdir()
        proc, verdicts = run_gate_session(
            gate_dir,
            server.url,
            key,
            "job_secret_gate",
            benchmark["dataset"],
            extra=[
                "-rA",
                "-vv",
                f"--scaimind-report={gate_dir / 'report.md'}",
                "--log-level=DEBUG",
                "--showlocals",
                "--tb=long",
            ],
        )
        (gate_dir / "stdout.txt").write_text(proc.stdout)
        (gate_dir / "stderr.txt").write_text(proc.stderr)
        assert verdicts == {"test_good_enough": "passed", "test_catches_regression": "failed"}, (
            proc.stdout
        )
        assert (gate_dir / "report.md").exists()

        # a notebook, executed by a real kernel, saved with its outputs
        notebook = _notebook(server.url, "job_secret_nb", model_uri, benchmark)
        env_before = dict(os.environ)
        os.environ.update({"SCAIGRID_HOST": server.url, "SCAIGRID_API_KEY": key})
        try:
            NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
        finally:
            os.environ.clear()
            os.environ.update(env_before)
        nbformat.write(notebook, tmp_path / "executed.ipynb")
        outputs = (tmp_path / "executed.ipynb").read_text()
        assert "COMPLETED" in outputs and "eval_missing" in outputs

        # client-side texts: reprs, exception messages, debug logs
        caplog.set_level(logging.DEBUG)
        with scaimind_nb.Client(server.url, key, max_retries=0) as client:
            texts.append(repr(client))
            for call in (lambda: client.get("eval_missing"), lambda: client.cancel("eval_x")):
                with pytest.raises(scaimind_nb.ScaimindError) as info:
                    call()
                texts += [str(info.value), repr(info.value), repr(vars(info.value))]
        with scaimind_nb.Client("http://127.0.0.1:9", key, max_retries=0) as dead:
            with pytest.raises(scaimind_nb.APIConnectionError) as info:
                dead.get("eval_x")
            texts += [str(info.value), repr(info.value)]
        texts.append(caplog.text)
    finally:
        server.stop()

    # the demo, in its own process and folder; it generates its coordinator's key with
    # secrets.token_urlsafe, which this wrapper pins to our key so the search below can find it
    demo_dir = tmp_path / "demo"
    demo_dir.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("SCAIGRID_HOST", None)
    env.pop("SCAIGRID_API_KEY", None)
    wrapper = (
        "import secrets, sys\n"
        f"secrets.token_urlsafe = lambda nbytes=None: {key!r}\n"
        "from scaimind_local._cli import main\n"
        "sys.exit(main(['demo', '--quick', '--num-samples', '1', '--no-install', '--dir', 'out']))\n"
    )
    demo = subprocess.run(
        [sys.executable, "-c", wrapper],
        cwd=demo_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    (demo_dir / "stdout.txt").write_text(demo.stdout)
    (demo_dir / "stderr.txt").write_text(demo.stderr)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]

    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) > 10
    assert {p.name for p in written} >= {
        "junit.xml",
        "report.md",
        "executed.ipynb",
        "server.log",
        "server.sqlite",
    }
    leaks = [str(p) for p in written if key.encode() in p.read_bytes()]
    leaks += [t[:200] for t in texts if key in t]
    assert leaks == []
