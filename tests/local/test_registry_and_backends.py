"""Third-party runners (pluggy and entry points), the custom scorers and the openai backend."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scaimind_local import (
    BenchmarkSpec,
    InvalidBenchmark,
    LocalCoordinator,
    RunnerResult,
    hookimpl,
    supports_loglikelihood,
)
from scaimind_local._backends import read_manifest
from scaimind_local._backends.openai import load as load_openai
from scaimind_local._benchmarks.custom import _Options
from scaimind_local._registry import Registry
from scaimind_local.testing import write_model

from ._util import client_for, submit, wait_for


class LengthRunner:
    """Scores the model by the length of its answer to one prompt."""

    name = "length"

    def validate(self, spec: BenchmarkSpec, ctx: Any) -> None:
        if spec.dataset:
            raise InvalidBenchmark("length takes no dataset")

    def run(self, spec: BenchmarkSpec, model: Any, ctx: Any) -> RunnerResult:
        [reply] = model.generate(["hi"], max_new_tokens=8, temperature=0.0, stop=None)
        ctx.checkpoint(1, 1)
        return RunnerResult(metrics={"length": float(len(reply))}, num_samples=1)


class OddRunner(LengthRunner):
    """Metrics a JSON encoder must not emit as bare tokens."""

    name = "odd"

    def run(self, spec: BenchmarkSpec, model: Any, ctx: Any) -> RunnerResult:
        metrics = {"nan": math.nan, "inf": math.inf, "ninf": -math.inf}
        return RunnerResult(metrics=metrics, num_samples=1, primary_metric="inf")


class Plugin:
    @hookimpl
    def scaimind_local_benchmarks(self) -> list[Any]:
        return [LengthRunner(), OddRunner()]


def test_pluggy_plugin_runner_runs_end_to_end(tmp_path: Path, scaimind_api_key: str) -> None:
    with LocalCoordinator(
        tmp_path / "db", tmp_path / "d", scaimind_api_key, plugins=[Plugin()]
    ) as c:
        model = write_model(c.drive_root, "org/models/m", options={"default": "hello"})
        c.register_job("job_p", model)
        with client_for(c) as api:
            assert "length" in api.get("/benchmarks").json()["data"]["benchmarks"]
            assert "no dataset" in submit(api, "job_p", {"name": "length", "dataset": "x"}).text
            done = wait_for(api, submit(api, "job_p", "length").json()["data"]["evaluation_id"])
            odd = wait_for(api, submit(api, "job_p", "odd").json()["data"]["evaluation_id"])
            raw = api.get(f"/evaluations/{odd['evaluation_id']}").text
    assert done["results"][0]["score"] == 5.0
    assert odd["results"][0]["metrics"] == {"nan": "NaN", "inf": "Infinity", "ninf": "-Infinity"}
    assert odd["results"][0]["score"] == "Infinity"
    assert "NaN" in raw and ":NaN" not in raw


def test_entry_point_runner_is_registered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "ep_length_runner.py").write_text(
        "class R:\n    name = 'ep-'\n"
        "    def validate(self, spec, ctx): pass\n"
        "    def run(self, spec, model, ctx): raise NotImplementedError\n"
        "RUNNER = R()\n"
    )
    info = tmp_path / "ep_length-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-length\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[scaimind_local.benchmarks]\nlength = ep_length_runner:RUNNER\n"
        "broken = ep_broken_runner:RUNNER\n"
    )
    (tmp_path / "ep_broken_runner.py").write_text("raise ImportError('needs a GPU')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="scaimind_local"):
        registry = Registry()
    assert "broken" in caplog.text and "needs a GPU" in caplog.text
    assert "ep-*" in registry.names()
    assert registry.get("ep-anything").name == "ep-"
    with pytest.raises(InvalidBenchmark, match=r"knows: .*custom-\*"):
        registry.get("nosuch")


@pytest.mark.parametrize(
    ("params", "reply", "refs", "ok"),
    [
        ({}, "  Paris \n", ["paris"], True),
        ({}, "Paris, France", ["paris"], False),
        ({"match": "contains"}, "It is PARIS.", ["paris"], True),
        ({"match": "regex"}, "answer: 42", [r"\b4\d\b"], True),
        ({"match": "regex"}, "answer: 24", [r"\b4\d\b"], False),
        ({"match": "numeric"}, "The total is $1,234.50", ["1234.5"], True),
        ({"match": "numeric"}, "about 3.2", ["3.14"], False),
        ({"match": "numeric", "tolerance": "0.1"}, "about 3.2", ["3.14"], True),
        ({"pattern": r"ANSWER:\s*(\w+)"}, "blah\nANSWER: B", ["b"], True),
        ({}, "no", ["yes", "No"], True),
    ],
)
def test_match_modes(params: dict[str, str], reply: str, refs: list[str], ok: bool) -> None:
    assert _Options(BenchmarkSpec("custom-x", "d", None, params)).correct(reply, refs) is ok


# A tiny OpenAI-compatible server: /v1/completions (with echo logprobs when asked) and chat.


def _openai_app(with_logprobs: bool) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def completions(request: Request) -> JSONResponse:
        body = await request.json()
        assert body["model"] == "tiny"
        prompt = body["prompt"]
        if body.get("echo"):
            if not with_logprobs:
                return JSONResponse({"choices": [{"text": prompt, "logprobs": None}]})
            words = prompt.split(" ")
            offsets, pos = [], 0
            for w in words:
                offsets.append(pos)
                pos += len(w) + 1
            tokens = [(" " if i else "") + w for i, w in enumerate(words)]
            values = [None] + [-1.0] * (len(words) - 1)
            lp = {"tokens": tokens, "token_logprobs": values, "text_offset": offsets}
            return JSONResponse({"choices": [{"text": prompt, "logprobs": lp}]})
        text = f"echo:{prompt}|t={body['temperature']}|n={body['max_tokens']}STOP tail"
        return JSONResponse({"choices": [{"text": text}]})

    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        content = "chat:" + body["messages"][-1]["content"]
        return JSONResponse({"choices": [{"message": {"role": "assistant", "content": content}}]})

    return Starlette(
        routes=[
            Route("/v1/completions", completions, methods=["POST"]),
            Route("/v1/chat/completions", chat, methods=["POST"]),
        ]
    )


@pytest.fixture(params=[True, False], ids=["vllm-like", "no-prompt-logprobs"])
def openai_server(request: pytest.FixtureRequest) -> Iterator[tuple[str, bool]]:
    import socket

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(_openai_app(request.param), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        thread.join(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1", request.param
    server.should_exit = True
    thread.join(10)


def test_openai_backend_generates_and_probes_loglikelihood(
    openai_server: tuple[str, bool], tmp_path: Path
) -> None:
    base_url, has_logprobs = openai_server
    write_model(tmp_path, "m", backend="openai", base_url=base_url, model="tiny")
    model = load_openai(read_manifest(tmp_path / "m"), {})
    out = model.generate(["hello"], max_new_tokens=7, temperature=0.0, stop=["STOP"])
    assert out == ["echo:hello|t=0.0|n=7"]
    assert supports_loglikelihood(model) is has_logprobs
    if has_logprobs:
        assert model.loglikelihood([("The sky is", " blue today")]) == [-2.0]
    write_model(tmp_path, "c", backend="openai", base_url=base_url, model="tiny", endpoint="chat")
    chat = load_openai(read_manifest(tmp_path / "c"), {})
    assert chat.generate(["hi"], max_new_tokens=5, temperature=0.5, stop=None) == ["chat:hi"]
    assert not supports_loglikelihood(chat)


def test_openai_manifest_without_model_is_a_400(scored_setup, unique: str) -> None:
    coord, job_id, _, benchmark, _ = scored_setup
    uri = write_model(coord.drive_root, f"org/models/oa-{unique}", backend="openai", base_url="x")
    with client_for(coord) as api:
        resp = submit(api, job_id, benchmark, model_uri=uri)
    assert resp.status_code == 400 and '"model"' in resp.json()["error"]["message"]
