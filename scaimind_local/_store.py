"""SQLite store (WAL): jobs, evaluations with their progress and results, per-sample records.

Every state change is a single SQL statement or transaction, so a killed process leaves the
file consistent; one connection per thread keeps sqlite3's threading rules simple. Each
evaluation row also holds its rendered JSON record (`rendered`), rewritten in the same
transaction as every change of the row, so a GET is one indexed read with no decode/encode.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scaimind_nb._contract import Status

from ._render import Hide, dump_json, render_evaluation

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
    rendered BLOB,
    model_digest TEXT,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS evaluations_newest ON evaluations (created_at DESC, id DESC);
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
MAX_ATTEMPTS = 3
"""Runs an evaluation may start: one the coordinator died while running this often is a poison
pill (it crashed, was killed or ran out of memory each time) and ends FAILED, not requeued."""


class KeyInUse(Exception):
    """Another submit recorded this Idempotency-Key first (a concurrent request won the race)."""


def _format(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Store:
    """All persistent state of a coordinator, in one SQLite file."""

    def __init__(self, path: str | Path, *, hide: Hide | None = None) -> None:
        """Open (or create) the file; `hide` cleans server paths out of stored renderings."""
        self.path = str(path)
        self._hide: Hide = hide or (lambda value: value)
        self._local = threading.local()
        self._clock_lock = threading.Lock()
        self._last_ts = datetime.min.replace(tzinfo=UTC)
        conn = self._conn()
        conn.executescript(_SCHEMA)
        columns = {r[1] for r in conn.execute("PRAGMA table_info(evaluations)")}
        if "rendered" not in columns:  # a file from before the stored rendering
            conn.execute("ALTER TABLE evaluations ADD COLUMN rendered BLOB")
        if "model_digest" not in columns:  # a file from before content digests
            conn.execute("ALTER TABLE evaluations ADD COLUMN model_digest TEXT")
        if "attempts" not in columns:  # a file from before attempts were counted
            conn.execute("ALTER TABLE evaluations ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0")
        conn.execute(
            "CREATE INDEX IF NOT EXISTS evaluations_claim ON evaluations (status, attempts, seq)"
        )
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
            row["rendered"] = dump_json(render_evaluation(row, self._hide))
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
        model_digest: str | None = None,
    ) -> dict[str, Any]:
        """Insert a QUEUED evaluation and return its row.

        `benchmarks` are the specs, each with the `data` it scores when known; `model_digest`
        is the digest of the model artefact taken at submit time.

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
                " benchmarks, progress, created_at, updated_at, model_digest)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
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
                    model_digest,
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
        """The evaluation's rendered JSON record, as stored with its last change."""
        return self.get_rendered_many([eval_id]).get(eval_id)

    def get_rendered_many(self, eval_ids: list[str]) -> dict[str, bytes]:
        """The stored renderings of the evaluations that exist among `eval_ids` (GET's path)."""
        marks = ",".join("?" * len(eval_ids))
        rows = self._conn().execute(
            f"SELECT id, rendered FROM evaluations WHERE id IN ({marks})", eval_ids
        )
        return {row[0]: row[1] for row in rows}

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
        """Atomically move the next QUEUED evaluation to RUNNING, count the attempt, return it.

        Never-started evaluations go first, oldest first; those a crash interrupted follow, so
        a poison pill cannot hold up the queue while it uses up its attempts.
        """
        now = self.now()
        rows = self._update(
            "UPDATE evaluations SET status=:running, attempts=attempts+1,"
            " started_at=COALESCE(started_at, :now), updated_at=:now WHERE seq = (SELECT seq"
            " FROM evaluations WHERE status=:queued ORDER BY attempts, seq LIMIT 1)"
            " AND status=:queued RETURNING *",
            {"running": Status.RUNNING, "queued": Status.QUEUED, "now": now},
        )
        return rows[0] if rows else None

    def requeue_running(self) -> tuple[int, int]:
        """After a restart: (requeued, failed) of the evaluations a dead process left RUNNING.

        Work goes back to the queue with its finished specs kept, except evaluations that have
        used up MAX_ATTEMPTS: those end FAILED, saying why.
        """
        now = self.now()
        error = json.dumps(
            {
                "code": "INTERRUPTED",
                "message": f"the coordinator stopped {MAX_ATTEMPTS} times while running this "
                "evaluation (a crash, a kill or running out of memory each time); it is not "
                "retried again",
            }
        )
        conn = self._conn()
        with _transaction(conn):
            failed = self._write(
                conn,
                "UPDATE evaluations SET status=:failed, error=:error, updated_at=:now,"
                " completed_at=:now WHERE status=:running AND attempts >= :max RETURNING *",
                {"failed": Status.FAILED, "error": error, "now": now,
                 "running": Status.RUNNING, "max": MAX_ATTEMPTS},
            )  # fmt: skip
            requeued = self._write(
                conn,
                "UPDATE evaluations SET status=?, updated_at=? WHERE status=? RETURNING *",
                (Status.QUEUED, now, Status.RUNNING),
            )
        return len(requeued), len(failed)

    def release(self, eval_id: str) -> None:
        """A graceful stop: the run stays RUNNING (requeued at the next start) uncounted."""
        self._update(
            "UPDATE evaluations SET attempts=MAX(attempts-1, 0) WHERE id=? AND status=?"
            " RETURNING *",
            (eval_id, Status.RUNNING),
        )

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
        """Per-sample rows (spec_index, benchmark, idx, record JSON) in (spec, index) order,
        keyset-paginated; plus whether more follow."""
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
        return [dict(r) for r in rows[:page_size]], len(rows) > page_size

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
