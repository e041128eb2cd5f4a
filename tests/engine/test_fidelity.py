"""Fidelity against lm-evaluation-harness on a small subset: `benchmarks/mmlu_fidelity.py` itself.

The script installs lm-eval 0.4.13 into a cached virtual environment on first use; the test
never installs it (`--no-install`) and skips, naming the command, where it is missing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.reallm, pytest.mark.mmlu_data, pytest.mark.slow]
SCRIPT = Path(__file__).parents[2] / "benchmarks" / "mmlu_fidelity.py"
NOT_AVAILABLE = 77


def test_our_mmlu_runner_matches_lm_eval_question_by_question(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    args = ["--questions", "12", "--fewshot-questions", "4", "--text-questions", "6"]
    env = {**os.environ, "PYTHONPATH": str(SCRIPT.parents[1])}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--no-install", "--json", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    if done.returncode == NOT_AVAILABLE:
        pytest.skip(f"lm-eval is missing: run `python {SCRIPT.name}` once to install it")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert set(figures) == {
        "zero-shot, answer letters",
        "5-shot, answer letters",
        "zero-shot, choices_as=text",
    }
    for title, f in figures.items():
        assert f["same_prompts"] == f["n"], title  # lm-eval built the very same strings
        assert f["same_prediction"] == f["n"], title
        assert f["max_abs_loglikelihood_diff"] < 1e-3, title
        assert f["ours_accuracy"] == f["lm_eval_accuracy"], title
        assert f["ours_acc_norm"] == f["lm_eval_acc_norm"], title
