"""Every JSON shape the coordinator sends: records, listing items, pages, jobs, samples, errors.

The record is rendered the way protobuf's `MessageToDict` renders a message with
`preserving_proto_field_name=True`: snake_case names, int64 values as strings, enums as bare
names, NaN/±Infinity as strings, unset messages left out. Field names come from the contract
(`scaimind_nb._contract`), the one place that spells them.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from typing import Any

from scaimind_nb._contract import ErrorCode, Field, SampleField

Hide = Callable[[Any], Any]
"""Replaces server paths in a JSON value (`Drive.hide_all`); the identity by default."""


def _same(value: Any) -> Any:
    return value


def _finite(value: Any) -> Any:
    """NaN and ±Inf as the strings protobuf's JSON mapping uses; never a bare NaN token."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def dump_json(content: Any) -> bytes:
    """Compact JSON; NaN/Inf become strings (the C encoder refuses them, only then the walk)."""
    try:
        return json.dumps(content, separators=(",", ":"), allow_nan=False).encode()
    except ValueError:
        return json.dumps(_finite(content), separators=(",", ":"), allow_nan=False).encode()


def envelope(rendered: bytes) -> bytes:
    """A rendered payload in the `{"data": …}` envelope, with no decode/encode."""
    return b'{"' + Field.DATA.encode() + b'":' + rendered + b"}"


def error_body(status: int, message: str) -> bytes:
    """The error shape every 4xx (and the last-resort 500) carries."""
    code = ErrorCode.for_status(status)
    return dump_json({Field.ERROR: {"code": code, "message": message}})


def render_evaluation(row: dict[str, Any], hide: Hide = _same) -> dict[str, Any]:
    """The full record of an evaluation row; `hide` cleans the texts runners and errors wrote."""
    out: dict[str, Any] = {
        Field.EVALUATION_ID: row["id"],
        Field.JOB_ID: row["job_id"],
        Field.MODEL_URI: row["model_uri"],
        Field.CHECKPOINT_ID: row["checkpoint_id"],
        Field.STATUS: row["status"],
        Field.BENCHMARKS: [render_spec(b) for b in row["benchmarks"]],
        Field.PROGRESS: [
            {
                Field.BENCHMARK: p["benchmark"],
                Field.COMPLETED: str(p["completed"]),
                Field.TOTAL: str(p["total"]),
            }
            for p in row["progress"]
        ],
        Field.RESULTS: [_result(r, hide) for r in row["results"]],
        Field.CANCEL_REQUESTED: bool(row["cancel_requested"]),
        Field.CREATED_AT: row["created_at"],
        Field.UPDATED_AT: row["updated_at"],
    }
    if row.get("model_digest"):
        out[Field.MODEL_DIGEST] = row["model_digest"]
    if row["error"]:
        out[Field.ERROR] = hide(row["error"])
    for column, name in (("started_at", Field.STARTED_AT), ("completed_at", Field.COMPLETED_AT)):
        if row[column]:
            out[name] = row[column]
    return out


def render_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """One benchmark spec of a record (or of a precheck answer), with the data it scores.

    `data` (`{digest, records, source}`) is present when the spec's data was described at
    submit time: it is what the evaluation scores (a run refuses data that changed since).
    """
    out: dict[str, Any] = {
        Field.NAME: spec["name"],
        Field.DATASET: spec.get("dataset") or "",
        Field.NUM_SAMPLES: str(spec.get("num_samples") or 0),
        Field.PARAMETERS: spec.get("parameters") or {},
    }
    if spec.get(Field.DATA):
        out[Field.DATA] = spec[Field.DATA]
    return out


def _result(result: dict[str, Any], hide: Hide) -> dict[str, Any]:
    out = {**result, Field.NUM_SAMPLES: str(result["num_samples"])}
    if Field.EXTRA in out:
        out[Field.EXTRA] = hide(out[Field.EXTRA])
    return out


def render_listed(row: dict[str, Any]) -> dict[str, Any]:
    """A listing item: the evaluation's own job record, as ScaiGrid's ListJobs returns it."""
    return {
        Field.JOB_ID: row["id"],
        Field.NAME: f"evaluation of {row['job_id']}",
        Field.TYPE: "evaluation",
        Field.LABELS: {Field.TYPE: "evaluation", Field.PARENT_JOB_ID: row["job_id"]},
        Field.STATUS: row["status"],
        Field.CREATED_AT: row["created_at"],
        Field.UPDATED_AT: row["updated_at"],
    }


def page_token(key: list[Any]) -> str:
    """The opaque `next_page_token` for a keyset position (the app's `_untoken` reads it)."""
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def render_evaluation_page(rows: list[dict[str, Any]], more: bool, total: int) -> dict[str, Any]:
    """One listing page, newest first; the token continues after its last item."""
    token = page_token([rows[-1]["created_at"], rows[-1]["id"]]) if more else ""
    return {
        Field.EVALUATIONS: [render_listed(r) for r in rows],
        Field.NEXT_PAGE_TOKEN: token,
        Field.TOTAL_COUNT: str(total),
    }


def render_sample(row: dict[str, Any]) -> dict[str, Any]:
    """One per-item record of the samples route: the stable item id and outcome, then all stored.

    The item id is the runner's `id` (the dataset's own id, a HumanEval task id, an MMLU
    question id), else the item's position; `correct` is present for binary outcomes and
    `score` is the outcome in [0, 1]; `cluster` is the item's subject where it has one.
    """
    index: int = row["idx"]
    record: dict[str, Any] = json.loads(row["record"])
    item: dict[str, Any] = {
        SampleField.ITEM_ID: str(record.get("id", index)),
        SampleField.BENCHMARK: row["benchmark"],
        SampleField.SPEC_INDEX: row["spec_index"],
        SampleField.INDEX: index,
    }
    correct = record.get("correct")
    if isinstance(correct, bool):
        item[SampleField.CORRECT] = correct
        item[SampleField.SCORE] = float(correct)
    elif isinstance(record.get("score"), int | float) and not isinstance(record["score"], bool):
        item[SampleField.SCORE] = float(record["score"])
    if isinstance(record.get("subject"), str):
        item[SampleField.CLUSTER] = record["subject"]
    item[SampleField.RECORD] = record
    return item


def render_sample_page(rows: list[dict[str, Any]], more: bool) -> dict[str, Any]:
    """One page of per-sample records in (spec, index) order."""
    token = page_token([rows[-1]["spec_index"], rows[-1]["idx"]]) if more else ""
    return {Field.SAMPLES: [render_sample(r) for r in rows], Field.NEXT_PAGE_TOKEN: token}


def render_job(job: dict[str, Any]) -> dict[str, Any]:
    """A registered training job."""
    return {
        Field.JOB_ID: job["job_id"],
        Field.MODEL_URI: job["model_uri"],
        Field.STATUS: job["status"],
        Field.CREATED_AT: job["created_at"],
        Field.UPDATED_AT: job["updated_at"],
    }
