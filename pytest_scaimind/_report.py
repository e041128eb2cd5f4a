"""Gate records to reports: JUnit properties, the terminal table, the Markdown checklist and JSON."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROPERTY = "scaimind_gate"
_FLAT = (
    "benchmark",
    "metric",
    "score",
    "threshold",
    "baseline",
    "delta",
    "n",
    "ci_low",
    "ci_high",
    "verdict",
    "evaluation_id",
)
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
_MARK = {"pass": "x", "fail": " ", "inconclusive": " ", "error": " "}


def properties(record: dict[str, Any]) -> list[tuple[str, object]]:
    """JUnit properties of one gate: readable flat figures plus the whole record as JSON."""
    flat = [(f"scaimind_{k}", record[k]) for k in _FLAT if record.get(k) is not None]
    return [*flat, (PROPERTY, json.dumps(record, sort_keys=True))]


def records_of(user_properties: list[tuple[str, object]]) -> list[dict[str, Any]]:
    """The gate records carried by a test report's user properties."""
    return [json.loads(str(v)) for k, v in user_properties if k == PROPERTY]


def context(records: list[dict[str, Any]], fallback: dict[str, Any]) -> dict[str, Any]:
    """Run facts for a report: job, model, checkpoint, coordinator, evaluation ids and the time."""
    first = records[0] if records else {}
    return {
        "job_id": first.get("job_id") or fallback.get("job_id"),
        "model_uri": first.get("model_uri") or fallback.get("model_uri"),
        "checkpoint_id": first.get("checkpoint_id") or fallback.get("checkpoint_id") or "",
        "coordinator": first.get("host") or fallback.get("host"),
        "evaluation_ids": sorted({r["evaluation_id"] for r in records if r.get("evaluation_id")}),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "passed": sum(r["verdict"] == "pass" for r in records),
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


def _row(record: dict[str, Any], short: bool = False) -> list[str]:
    verdict = record["verdict"].upper()
    if record.get("action") and record["action"] not in ("pass", "fail", "error"):
        verdict += f" ({record['action']})"
    return [
        record["test"],
        _short(record["benchmark"]) if short else record["benchmark"],
        record.get("metric") or "-",
        _fmt(record.get("score")),
        _fmt(record.get("threshold")),
        _fmt(record.get("baseline")),
        _fmt(record.get("delta"), signed=True),
        _fmt(record.get("n")),
        verdict,
    ]


def table(records: list[dict[str, Any]]) -> list[str]:
    """Plain fixed-width rows (one per gate) that read well in a CI log."""
    rows = [list(_COLUMNS), *(_row(r, short=True) for r in records)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def markdown(records: list[dict[str, Any]], facts: dict[str, Any]) -> str:
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
        mark = _MARK.get(record["verdict"], " ")
        lines.append(
            f"- [{mark}] **{record['benchmark']}** {record.get('metric') or ''}: {record['message']}"
        )
    lines += ["", "| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    lines += [
        "| " + " | ".join(cell.replace("|", "\\|") for cell in _row(r)) + " |" for r in records
    ]
    return "\n".join(lines) + "\n"


def write(path: str | Path, records: list[dict[str, Any]], facts: dict[str, Any]) -> Path:
    """Write the report as Markdown (`.md`) or JSON (anything else, normally `.json`)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() in (".md", ".markdown"):
        target.write_text(markdown(records, facts), encoding="utf-8")
    else:
        target.write_text(
            json.dumps({**facts, "gates": records}, indent=2) + "\n", encoding="utf-8"
        )
    return target
