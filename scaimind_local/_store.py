"""SQLite store (WAL): jobs, evaluations with their progress and results, per-sample records.

Every state change is a single SQL statement or transaction, so a killed process leaves the
file consistent; one connection per thread keeps sqlite3's threading rules simple. Each
evaluation row also holds its rendered JSON record (`rendered`), rewritten in the same
transaction as every change of the row, so a GET is one indexed read with no decode/encode.
"""

from __future__ import annotations

import json
import math
import secrets
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scaimind_nb._contract import SampleField, Status

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    model_uri TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS evaluations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    job_id TEXT NOT NULL,
    model_uri TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    status TEXT NOT NULL,
    benchmarks TEXT NOT NULL,
    progress TEXT NOT NULL,
    results TEXT NOT NULL DEFAULT '[]',
    error TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    started_at TEXT,
    completed_at TEXT,
    rendered BLOB
);
CREATE INDEX IF NOT EXISTS evaluations_newest ON evaluations (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS evaluations_queue ON evaluations (status, seq);
CREATE TABLE IF NOT EXISTS samples (
    evaluation_id TEXT NOT NULL,
    spec_index INTEGER NOT NULL,
    benchmark TEXT NOT NULL,
    idx INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (evaluation_id, spec_index, idx)
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    evaluation_id TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idempotency_keys_age ON idempotency_keys (created_at);
"""
CANCELLED_ERROR = {"code": "CANCELLED", "message": "cancelled by request"}
"""The error a cancelled evaluation carries."""
IDEMPOTENCY_TTL = timedelta(hours=24)  # a submit's Idempotency-Key may be reused after this


class KeyInUse(Exception):
    """Another submit recorded this Idempotency-Key first (a concurrent request won the race)."""


def _format(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


def render_evaluation(row: dict[str, Any]) -> dict[str, Any]:
    """The full record: preserved snake_case names, int64 as strings, RFC 3339 timestamps."""
    out: dict[str, Any] = {
        "evaluation_id": row["id"],
        "job_id": row["job_id"],
        "model_uri": row["model_uri"],
        "checkpoint_id": row["checkpoint_id"],
        "status": row["status"],
        "benchmarks": [
            {
                "name": b["name"],
                "dataset": b.get("dataset") or "",
                "num_samples": str(b.get("num_samples") or 0),
                "parameters": b.get("parameters") or {},
            }
            for b in row["benchmarks"]
        ],
        "progress": [
            {
                "benchmark": p["benchmark"],
                "completed": str(p["completed"]),
                "total": str(p["total"]),
            }
            for p in row["progress"]
        ],
        "results": [{**r, "num_samples": str(r["num_samples"])} for r in row["results"]],
        "cancel_requested": bool(row["cancel_requested"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }
    if row["error"]:
        out["error"] = row["error"]
    for key in ("started_at", "completed_at"):
        if row[key]:
            out[key] = row[key]
    return out


def render_sample(
    spec_index: int, benchmark: str, index: int, record: dict[str, Any]
) -> dict[str, Any]:
    """One per-item record of the samples route: the stable item id and outcome, then all stored.

    The item id is the runner's `id` (the dataset's own id, a HumanEval task id, an MMLU
    question id), else the item's position; `correct` is present for binary outcomes and
    `score` is the outcome in [0, 1]; `cluster` is the item's subject where it has one.
    """
    item: dict[str, Any] = {
        SampleField.ITEM_ID: str(record.get("id", index)),
        SampleField.BENCHMARK: benchmark,
        SampleField.SPEC_INDEX: spec_index,
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


class Store:
    """All persistent state of a coordinator, in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        self._clock_lock = threading.Lock()
        self._last_ts = datetime.min.replace(tzinfo=UTC)
        conn = self._conn()
        conn.executescript(_SCHEMA)
        columns = {r[1] for r in conn.execute("PRAGMA table_info(evaluations)")}
        if "rendered" not in columns:  # a file from before the stored rendering
            conn.execute("ALTER TABLE evaluations ADD COLUMN rendered BLOB")
        with _transaction(conn):  # render rows that have no rendering yet (none once migrated)
            self._write(conn, "SELECT * FROM evaluations WHERE rendered IS NULL", ())
        last = conn.execute("SELECT MAX(updated_at) FROM evaluations").fetchone()[0]
        if last:  # keep timestamps increasing across restarts, even if the clock stepped back
            self._last_ts = datetime.strptime(last, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def _write(self, conn: sqlite3.Connection, sql: str, args: Any) -> list[dict[str, Any]]:
        """Run a statement returning whole evaluation rows and store each row's rendering.

        Every change of an evaluation goes through here, inside a transaction, so the rendered
        record served by GET never lags behind the row's columns.
        """
        rows = [_decode(r) for r in conn.execute(sql, args).fetchall()]
        for row in rows:
            row["rendered"] = dump_json(render_evaluation(row))
        conn.executemany(
            "UPDATE evaluations SET rendered=? WHERE seq=?",
            [(row["rendered"], row["seq"]) for row in rows],
        )
        return rows

    def _update(self, sql: str, args: Any) -> list[dict[str, Any]]:
        """`_write` in a transaction of its own."""
        conn = self._conn()
        with _transaction(conn):
            return self._write(conn, sql, args)

    def now(self) -> str:
        """A strictly increasing RFC 3339 timestamp, so creation order is listing order."""
        with self._clock_lock:
            ts = max(datetime.now(UTC), self._last_ts + timedelta(microseconds=1))
            self._last_ts = ts
        return _format(ts)

    # jobs

    def put_job(self, job_id: str, model_uri: str, status: str) -> dict[str, Any]:
        """Register a job, or update its model and status."""
        now = self.now()
        self._conn().execute(
            "INSERT INTO jobs VALUES (?, ?, ?, ?, ?) ON CONFLICT(job_id) DO UPDATE SET "
            "model_uri=excluded.model_uri, status=excluded.status, updated_at=excluded.updated_at",
            (job_id, model_uri, status, now, now),
        )
        job = self.get_job(job_id)
        assert job is not None
        return job

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return dict(row) if row else None

    # evaluations

    def create_evaluation(
        self,
        job_id: str,
        model_uri: str,
        checkpoint_id: str,
        benchmarks: list[dict[str, Any]],
        idempotency: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        """Insert a QUEUED evaluation and return its row.

        With ``idempotency=(key, fingerprint)`` the key is recorded in the same transaction, so
        of two submits with one live key exactly one creates an evaluation; the other gets
        KeyInUse and nothing is written.
        """
        eval_id = "eval_" + secrets.token_hex(12)
        now = self.now()
        progress = [
            {"benchmark": b["name"], "completed": 0, "total": b.get("num_samples") or 0}
            for b in benchmarks
        ]
        conn = self._conn()
        with _transaction(conn):
            [row] = self._write(
                conn,
                "INSERT INTO evaluations (id, job_id, model_uri, checkpoint_id, status,"
                " benchmarks, progress, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
                (
                    eval_id,
                    job_id,
                    model_uri,
                    checkpoint_id,
                    Status.QUEUED,
                    json.dumps(benchmarks),
                    json.dumps(progress),
                    now,
                    now,
                ),
            )
            if idempotency is not None:
                conn.execute(
                    "DELETE FROM idempotency_keys WHERE created_at < ?", (self._key_cutoff(),)
                )
                try:
                    conn.execute(
                        "INSERT INTO idempotency_keys VALUES (?, ?, ?, 200, ?)",
                        (*idempotency, eval_id, now),
                    )
                except sqlite3.IntegrityError:
                    raise KeyInUse(idempotency[0]) from None
        return row

    def _key_cutoff(self) -> str:
        return _format(datetime.now(UTC) - IDEMPOTENCY_TTL)

    def idempotent_submit(self, key: str) -> tuple[str, str, int] | None:
        """(fingerprint, evaluation_id, status_code) recorded for a live Idempotency-Key."""
        row = (
            self._conn()
            .execute(
                "SELECT fingerprint, evaluation_id, status_code FROM idempotency_keys"
                " WHERE key = ? AND created_at >= ?",
                (key, self._key_cutoff()),
            )
            .fetchone()
        )
        return (row[0], row[1], row[2]) if row else None

    def get_evaluation(self, eval_id: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT * FROM evaluations WHERE id = ?", (eval_id,)).fetchone()
        return _decode(row) if row else None

    def get_rendered(self, eval_id: str) -> bytes | None:
        """The evaluation's rendered JSON record, as stored with its last change (GET's path)."""
        row = (
            self._conn()
            .execute("SELECT rendered FROM evaluations WHERE id = ?", (eval_id,))
            .fetchone()
        )
        return row[0] if row else None

    def list_evaluations(
        self, page_size: int, after: tuple[str, str] | None
    ) -> tuple[list[dict[str, Any]], bool, int]:
        """One page newest first, keyset-paginated after (created_at, id); plus more?, total."""
        conn = self._conn()
        cols = "id, job_id, status, created_at, updated_at"
        if after is None:
            rows = conn.execute(
                f"SELECT {cols} FROM evaluations ORDER BY created_at DESC, id DESC LIMIT ?",
                (page_size + 1,),
            ).fetchall()
        else:
            rows = conn.execute(
                f"SELECT {cols} FROM evaluations WHERE (created_at, id) < (?, ?) "
                "ORDER BY created_at DESC, id DESC LIMIT ?",
                (*after, page_size + 1),
            ).fetchall()
        total = conn.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0]
        return [dict(r) for r in rows[:page_size]], len(rows) > page_size, total

    def claim_next(self) -> dict[str, Any] | None:
        """Atomically move the oldest QUEUED evaluation to RUNNING and return it."""
        now = self.now()
        rows = self._update(
            "UPDATE evaluations SET status=:running, started_at=COALESCE(started_at, :now),"
            " updated_at=:now WHERE seq = (SELECT seq FROM evaluations WHERE status=:queued"
            " ORDER BY seq LIMIT 1) AND status=:queued RETURNING *",
            {"running": Status.RUNNING, "queued": Status.QUEUED, "now": now},
        )
        return rows[0] if rows else None

    def requeue_running(self) -> int:
        """After a restart: work that was RUNNING goes back to the queue (finished specs kept)."""
        rows = self._update(
            "UPDATE evaluations SET status=?, updated_at=? WHERE status=? RETURNING *",
            (Status.QUEUED, self.now(), Status.RUNNING),
        )
        return len(rows)

    def set_progress(self, eval_id: str, progress: list[dict[str, Any]]) -> None:
        self._update(
            "UPDATE evaluations SET progress=?, updated_at=? WHERE id=? AND status=? RETURNING *",
            (json.dumps(progress), self.now(), eval_id, Status.RUNNING),
        )

    def add_result(
        self,
        eval_id: str,
        results: list[dict[str, Any]],
        progress: list[dict[str, Any]],
        spec_index: int,
        benchmark: str,
        samples: list[dict[str, Any]],
    ) -> None:
        """Store one benchmark's result and its per-sample records in one transaction."""
        conn = self._conn()
        with _transaction(conn):
            conn.execute(
                "DELETE FROM samples WHERE evaluation_id=? AND spec_index=?", (eval_id, spec_index)
            )
            conn.executemany(
                "INSERT INTO samples VALUES (?, ?, ?, ?, ?)",
                [(eval_id, spec_index, benchmark, i, json.dumps(s)) for i, s in enumerate(samples)],
            )
            self._write(
                conn,
                "UPDATE evaluations SET results=?, progress=?, updated_at=? WHERE id=? RETURNING *",
                (json.dumps(results), json.dumps(progress), self.now(), eval_id),
            )

    def finish(self, eval_id: str, status: Status, error: dict[str, str] | None = None) -> None:
        now = self.now()
        self._update(
            "UPDATE evaluations SET status=?, error=?, updated_at=?, completed_at=? WHERE id=?"
            " RETURNING *",
            (status, json.dumps(error) if error else None, now, now, eval_id),
        )

    def request_cancel(self, eval_id: str) -> dict[str, Any] | None:
        """Cancel a QUEUED evaluation at once; flag a RUNNING one for its next checkpoint."""
        now = self.now()
        error = json.dumps(CANCELLED_ERROR)
        conn = self._conn()
        with _transaction(conn):
            self._write(
                conn,
                "UPDATE evaluations SET status=?, error=?, updated_at=?, completed_at=?,"
                " cancel_requested=1 WHERE id=? AND status=? RETURNING *",
                (Status.CANCELLED, error, now, now, eval_id, Status.QUEUED),
            )
            self._write(
                conn,
                "UPDATE evaluations SET cancel_requested=1, updated_at=? WHERE id=?"
                " AND status=? RETURNING *",
                (now, eval_id, Status.RUNNING),
            )
        return self.get_evaluation(eval_id)

    def cancel_requested(self, eval_id: str) -> bool:
        row = (
            self._conn()
            .execute("SELECT cancel_requested FROM evaluations WHERE id=?", (eval_id,))
            .fetchone()
        )
        return bool(row and row[0])

    def list_samples(
        self, eval_id: str, benchmark: str | None, page_size: int, after: tuple[int, int] | None
    ) -> tuple[list[dict[str, Any]], bool]:
        """Per-sample records in (spec, index) order, keyset-paginated."""
        where: list[str] = ["evaluation_id=?"]
        args: list[Any] = [eval_id]
        if benchmark:
            where.append("benchmark=?")
            args.append(benchmark)
        if after is not None:
            where.append("(spec_index, idx) > (?, ?)")
            args.extend(after)
        rows = (
            self._conn()
            .execute(
                f"SELECT spec_index, benchmark, idx, record FROM samples WHERE {' AND '.join(where)}"
                " ORDER BY spec_index, idx LIMIT ?",
                (*args, page_size + 1),
            )
            .fetchall()
        )
        out = [render_sample(r[0], r[1], r[2], json.loads(r[3])) for r in rows[:page_size]]
        return out, len(rows) > page_size

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class _transaction:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error) on an autocommit connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


def _decode(row: sqlite3.Row) -> dict[str, Any]:
    record = dict(row)
    for key in ("benchmarks", "progress", "results"):
        record[key] = json.loads(record[key])
    record["error"] = json.loads(record["error"]) if record["error"] else None
    return record
