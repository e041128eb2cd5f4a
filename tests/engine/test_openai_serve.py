"""The `openai` backend against a real OpenAI-compatible server: `transformers serve`.

The server runs SmolLM2-135M-Instruct from a local float32 folder (exported once from the
packaged GGUF) on loopback; the test starts it and waits for uvicorn's "running" line and a
200 from /health. `transformers serve` (transformers 5.x) ignores `echo` and `logprobs` on
/v1/completions, so log-likelihood scoring is not offered and mmlu says so or runs generatively.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scaimind_local import LocalCoordinator
from scaimind_local._backends import MODELS
from scaimind_local._backends.base import ModelManifest, supports_chat, supports_loglikelihood
from scaimind_local._benchmarks.base import BenchmarkSpec, InvalidBenchmark
from scaimind_local._benchmarks.mmlu import RUNNER as MMLU
from scaimind_local.testing import export_smollm2, write_custom_dataset
from scaimind_nb import Client

from ._helpers import make_context

pytestmark = [pytest.mark.reallm, pytest.mark.mmlu_data, pytest.mark.slow]


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_smollm2(tmp_path_factory.mktemp("smollm2") / "f32")


@pytest.fixture(scope="module")
def server(weights: Path) -> Iterator[str]:
    """`transformers serve` on a free loopback port, ready when uvicorn says so and /health is 200."""
    from transformers.utils.import_utils import is_serve_available

    if not is_serve_available():
        pytest.skip("transformers serve needs fastapi and openai: pip install -e '.[dev]'")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-c", "from transformers.cli.transformers import main; main()"]
    command += ["serve", str(weights), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--device", "cpu", "--log-level", "info"]
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # blocks until the server writes; ends if it dies
        seen.append(line)
        if "Uvicorn running on" in line:
            break
    url = f"http://127.0.0.1:{port}"
    try:
        assert httpx.get(url + "/health").status_code == 200, "".join(seen[-20:])
        yield url + "/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stderr.close()


def openai_model(server: str, weights: Path, endpoint: str) -> Any:
    config = {"backend": "openai", "base_url": server, "model": str(weights), "endpoint": endpoint}
    return MODELS.load(ModelManifest("openai", "/", config), {})


def test_completions_cut_at_stop_and_are_deterministic_at_temperature_0(
    server: str, weights: Path
) -> None:
    model = openai_model(server, weights, "completions")
    prompts = ["Count: 1, 2, 3,", "The capital of France is"]
    first = model.generate(prompts, max_new_tokens=12, temperature=0.0, stop=[" 6", "\n"])
    again = model.generate(prompts, max_new_tokens=12, temperature=0.0, stop=[" 6", "\n"])
    assert first == again
    assert first[0].startswith(" 4, 5,") and " 6" not in first[0]  # the server keeps the stop
    assert "\n" not in first[1] and "Paris" in first[1]
    # the same weights, greedy, in our own hf backend give the same continuation
    hf = MODELS.load(ModelManifest("hf", "/", {"backend": "hf", "path": str(weights)}), {})
    assert hf.generate(prompts, max_new_tokens=12, temperature=0.0, stop=[" 6", "\n"]) == first


def test_chat_endpoint_makes_a_chat_model(server: str, weights: Path) -> None:
    model = openai_model(server, weights, "chat")
    assert supports_chat(model)
    talk = [[{"role": "user", "content": "What is 2+3? Answer with the number."}]]
    first = model.chat(talk, max_new_tokens=16, temperature=0.0, stop=None)
    assert first == model.chat(talk, max_new_tokens=16, temperature=0.0, stop=None)
    assert "5" in first[0]
    cut = model.chat(talk, max_new_tokens=16, temperature=0.0, stop=["5"])
    assert "5" not in cut[0] and first[0].startswith(cut[0])


def test_without_prompt_logprobs_loglikelihood_is_refused_and_mmlu_generates(
    server: str, weights: Path
) -> None:
    model = openai_model(server, weights, "completions")
    assert not supports_loglikelihood(model)  # the probe found no prompt log-probabilities
    strict = BenchmarkSpec("mmlu", num_samples=2, parameters={"scoring": "loglikelihood"})
    with pytest.raises(InvalidBenchmark, match="cannot score continuations"):
        MMLU.run(strict, model, make_context())
    result = MMLU.run(BenchmarkSpec("mmlu", num_samples=3), model, make_context())
    assert result.extra["scoring_mode"] == "generative" and result.num_samples == 3


def test_an_openai_model_through_the_coordinator(
    server: str, weights: Path, tmp_path: Path, scaimind_api_key: str
) -> None:
    with LocalCoordinator(
        tmp_path / "db.sqlite", tmp_path / "drive", api_key=scaimind_api_key
    ) as c:
        folder = Path(c.drive_root, "org/models/served")
        folder.mkdir(parents=True)
        manifest = {"backend": "openai", "base_url": server, "model": str(weights)}
        (folder / "scaimind-model.json").write_text(json.dumps(manifest))
        rows = [{"prompt": "The capital of France is", "reference": "Paris"}]
        dataset = write_custom_dataset(c.drive_root, "org/eval/qa.jsonl", rows)
        c.register_job("job_served", "scaidrive://org/models/served")
        benchmarks = [
            {"name": "custom-qa", "dataset": dataset,
             "parameters": {"match": "contains", "max_new_tokens": "6"}},
            {"name": "mmlu", "num_samples": 2},
        ]  # fmt: skip
        with Client(host=c.url, api_key=c.api_key) as client:
            submitted = client.submit("job_served", "scaidrive://org/models/served", benchmarks)
            evaluation = client.wait(submitted.evaluation_id, timeout=600)
    assert evaluation.status.value == "COMPLETED", evaluation.error
    assert evaluation.result("custom-qa").score == 1.0
    assert evaluation.result("mmlu").extra["scoring_mode"] == "generative"
