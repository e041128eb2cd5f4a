"""Runs inside an interpreter that has lm-evaluation-harness: scores MMLU tasks, writes JSON.

    python _lmeval_worker.py job.json out.json

`job.json`: {"model": folder, "tasks_dir": folder, "tasks": [names], "num_fewshot": k,
"batch_size": n, "threads": t}. The tasks are per-subject YAMLs that include lm-eval's own MMLU
template (written by `_mmlu_reference.write_lmeval_tasks`). `out.json` gets the wall and CPU
seconds of `simple_evaluate` (the model is loaded before the clock starts) and, per question,
its id, the (context, continuation) pairs lm-eval built, their log-likelihoods, acc, acc_norm.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any


def main(job_file: str, out_file: str) -> None:
    with open(job_file, encoding="utf-8") as fh:
        job = json.load(fh)
    import torch
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    torch.set_num_threads(int(job["threads"]))
    lm = HFLM(pretrained=job["model"], dtype="float32", batch_size=job["batch_size"], device="cpu")
    manager = TaskManager(include_path=job["tasks_dir"], include_defaults=False)
    wall, cpu = time.perf_counter(), time.process_time()
    results: Any = simple_evaluate(
        model=lm,
        tasks=job["tasks"],
        num_fewshot=job["num_fewshot"],
        task_manager=manager,
        log_samples=True,
        bootstrap_iters=0,
        random_seed=0,
        numpy_random_seed=0,
        torch_random_seed=0,
        fewshot_random_seed=0,
    )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    questions = []
    for samples in results["samples"].values():
        for sample in samples:
            questions.append(
                {
                    "id": sample["doc"]["id"],
                    "pairs": [list(args) for args in sample["arguments"]],
                    "loglikelihoods": [float(r[0]) for r in sample["filtered_resps"]],
                    "acc": float(sample["acc"]),
                    "acc_norm": float(sample.get("acc_norm", sample["acc"])),
                }
            )
    with open(out_file, "w", encoding="utf-8") as fh:
        json.dump({"wall": wall, "cpu": cpu, "questions": questions}, fh)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
