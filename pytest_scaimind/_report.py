"""Gate records to reports: JUnit properties, the terminal table, the Markdown checklist and JSON."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_scaimind._record import GateRecord, Outcome

_COLUMNS = (
    "test",
    "benchmark",
    "metric",
    "score",
    "threshold",
    "baseline",
    "delta",
    "n",
    "verdict",
)


def context(records: list[GateRecord], fallback: dict[str, Any]) -> dict[str, Any]:
    """Run facts for a report: job, model, checkpoint, coordinator, evaluation ids and the time."""
    first = records[0] if records else None
    return {
        "job_id": (first and first.job_id) or fallback.get("job_id"),
        "model_uri": (first and first.model_uri) or fallback.get("model_uri"),
        "checkpoint_id": (first and first.checkpoint_id) or fallback.get("checkpoint_id") or "",
        "coordinator": (first and first.host) or fallback.get("host"),
        "evaluation_ids": sorted({r.evaluation_id for r in records if r.evaluation_id}),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "passed": sum(r.verdict is Outcome.PASS for r in records),
        "total": len(records),
    }


def _fmt(value: Any, signed: bool = False) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:+.4f}" if signed else f"{value:.4f}"
    return str(value)


def _short(benchmark: str) -> str:
    """A spec label with its dataset cut to the file name, so CI log rows stay narrow."""
    return re.sub(r"@[^\[{]*/", "@", benchmark)


def _row(record: GateRecord, short: bool = False) -> list[str]:
    verdict = record.verdict.value.upper()
    if record.action.value != record.verdict.value:
        verdict += f" ({record.action.value})"
    return [
        record.test,
        _short(record.benchmark) if short else record.benchmark,
        record.metric or "-",
        _fmt(record.score),
        _fmt(record.threshold),
        _fmt(record.baseline),
        _fmt(record.delta, signed=True),
        _fmt(record.n),
        verdict,
    ]


def table(records: list[GateRecord]) -> list[str]:
    """Plain fixed-width rows (one per gate) that read well in a CI log."""
    rows = [list(_COLUMNS), *(_row(r, short=True) for r in records)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def markdown(records: list[GateRecord], facts: dict[str, Any]) -> str:
    """A model-release checklist: one checkbox per gate, then the run facts."""
    lines = [
        f"## Model release gates: {facts['passed']}/{facts['total']} passed",
        "",
        f"- job: `{facts['job_id']}`",
        f"- model: `{facts['model_uri']}`",
        f"- checkpoint: `{facts['checkpoint_id'] or '(final)'}`",
        f"- evaluation: {', '.join(f'`{e}`' for e in facts['evaluation_ids']) or '-'}",
        f"- coordinator: {facts['coordinator']}",
        f"- time: {facts['generated_at']}",
        "",
    ]
    for record in records:
        mark = "x" if record.verdict is Outcome.PASS else " "
        lines.append(f"- [{mark}] **{record.benchmark}** {record.metric or ''}: {record.message}")
    lines += ["", "| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    lines += [
        "| " + " | ".join(cell.replace("|", "\\|") for cell in _row(r)) + " |" for r in records
    ]
    return "\n".join(lines) + "\n"


def write(path: str | Path, records: list[GateRecord], facts: dict[str, Any]) -> Path:
    """Write the report as Markdown (`.md`) or JSON (anything else, normally `.json`)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() in (".md", ".markdown"):
        target.write_text(markdown(records, facts), encoding="utf-8")
    else:
        target.write_text(
            json.dumps({**facts, "gates": [r.to_json() for r in records]}, indent=2) + "\n",
            encoding="utf-8",
        )
    return target
