"""Obtaining one evaluation per batch of specs: reuse (cache, then a bounded listing), submit, wait."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_scaimind._gates import label
from scaimind_nb import (
    APIConnectionError,
    Benchmark,
    Evaluation,
    NotFoundError,
    ScaimindError,
    ScaimindValueError,
    Status,
    WaitTimeoutError,
)

if TYPE_CHECKING:
    import pytest

    from pytest_scaimind._options import Options
    from scaimind_nb import Client

REUSABLE = (Status.COMPLETED, Status.RUNNING, Status.QUEUED, Status.PENDING)
MAX_LOOKUP_PAGES = 25
KEY_VERSION = 1


class InfraError(Exception):
    """The evaluation could not be obtained (down, FAILED, CANCELLED, timed out): gate tests ERROR."""


@dataclass
class Batch:
    """Specs that go to the coordinator as one evaluation (their names are distinct)."""

    specs: list[Benchmark]
    evaluation_id: str | None = None
    reused: bool = False
    evaluation: Evaluation | None = None
    error: str | None = None
    started: bool = False
    finished: bool = False

    def holds(self, spec: Benchmark) -> bool:
        """Whether this batch evaluates exactly `spec`."""
        return spec.key() in {s.key() for s in self.specs}


def plan_batches(specs: list[Benchmark]) -> list[Batch]:
    """Distinct specs into as few evaluations as possible: two specs sharing a name go to different ones."""
    batches: list[Batch] = []
    seen: set[Any] = set()
    for spec in specs:
        if spec.key() in seen:
            continue
        seen.add(spec.key())
        target = next((b for b in batches if all(s.name != spec.name for s in b.specs)), None)
        if target is None:
            batches.append(Batch([spec]))
        else:
            target.specs.append(spec)
    return batches


def request_key(host: str, request: dict[str, Any]) -> str:
    """Content address of a request: host, job, model, checkpoint and specs; never timeouts or polling."""
    specs = sorted(Benchmark.coerce(b).key() for b in request["benchmarks"])
    payload = [
        KEY_VERSION,
        host,
        request["job_id"],
        request["model_uri"],
        request.get("checkpoint_id") or "",
        specs,
    ]
    return hashlib.sha256(json.dumps(payload, default=list).encode()).hexdigest()[:24]


class Evaluations:
    """Starts and finishes batches for one session, sharing submissions across xdist workers."""

    def __init__(
        self, config: pytest.Config, options: Options, client: Client, host: str, model_uri: str
    ) -> None:
        self.config = config
        self.options = options
        self.client = client
        self.host = host
        self.model_uri = model_uri

    def start(self, batch: Batch) -> None:
        """Find or submit the batch's evaluation (once); failures are kept for the gate tests."""
        if batch.started:
            return
        batch.started = True
        try:
            request: dict[str, Any] = {
                "job_id": self.options.job,
                "model_uri": self.model_uri,
                "checkpoint_id": self.options.checkpoint,
                "benchmarks": [s.to_request() for s in batch.specs],
            }
            self.config.hook.pytest_scaimind_modify_request(config=self.config, request=request)
            key = request_key(self.host, request)
            shared = self._shared_dir()
            if shared is None:
                batch.evaluation_id, batch.reused = self._find_or_submit(key, request)
            else:
                batch.evaluation_id, batch.reused = self._claimed(shared, key, request)
        except InfraError as exc:
            batch.error = str(exc)
        except ScaimindError as exc:
            batch.error = self._describe(exc)

    def finish(self, batch: Batch) -> None:
        """Wait (at most --scaimind-timeout) for the batch's evaluation; raise InfraError on failure."""
        self.start(batch)
        if not batch.finished:
            batch.finished = True
            if batch.error is None:
                try:
                    batch.evaluation = self._wait(batch)
                except InfraError as exc:
                    batch.error = str(exc)
                except ScaimindError as exc:
                    batch.error = self._describe(exc, batch.evaluation_id)
            if batch.evaluation is not None:
                self.config.hook.pytest_scaimind_evaluation_done(
                    config=self.config, evaluation=batch.evaluation
                )
        if batch.error is not None:
            raise InfraError(batch.error)

    def _wait(self, batch: Batch) -> Evaluation:
        assert batch.evaluation_id is not None
        try:
            evaluation = self.client.wait(
                batch.evaluation_id,
                timeout=self.options.timeout,
                poll_interval=self.options.poll_interval,
            )
        except WaitTimeoutError as exc:
            status = exc.last.status.value if exc.last is not None else "unknown"
            raise InfraError(
                f"evaluation {batch.evaluation_id} still {status} after --scaimind-timeout="
                f"{self.options.timeout:g}s; rerun to pick the same evaluation up (its id is cached) "
                "or raise the timeout"
            ) from None
        if evaluation.status is not Status.COMPLETED:
            reason = f": {evaluation.error}" if evaluation.error else ""
            raise InfraError(
                f"evaluation {batch.evaluation_id} ended {evaluation.status.value}{reason}"
            )
        return evaluation

    def _find_or_submit(self, key: str, request: dict[str, Any]) -> tuple[str, bool]:
        """Reuse what matches (cache, then the newest-first listing in the window), else submit."""
        cache_key = f"scaimind/evaluations/{key}"
        if self.options.reuse != "never":
            found = self._from_cache(cache_key) or self._from_listing(request)
            if found is not None:
                self._remember(cache_key, {"evaluation_id": found})
                return found, True
            if self.options.reuse == "only":
                specs = ", ".join(label(Benchmark.coerce(b)) for b in request["benchmarks"])
                raise InfraError(
                    f"--scaimind-reuse=only: no COMPLETED or running evaluation of job {request['job_id']}, "
                    f"model {request['model_uri']}, checkpoint {request['checkpoint_id'] or '(final)'}, "
                    f"benchmarks {specs} within {self.options.reuse_window:g}h on {self.host}; "
                    "use --scaimind-reuse=auto to submit one"
                )
        evaluation = self.client.submit(
            request["job_id"],
            request["model_uri"],
            [Benchmark.coerce(b) for b in request["benchmarks"]],
            checkpoint_id=request["checkpoint_id"],
        )
        self._remember(
            cache_key,
            {
                "evaluation_id": evaluation.evaluation_id,
                "submitted_at": datetime.now(UTC).isoformat(),
            },
        )
        return evaluation.evaluation_id, False

    def _remember(self, cache_key: str, value: dict[str, Any]) -> None:
        """Keep the id in pytest's cache (when the cacheprovider is on) so a rerun resumes it."""
        cache = getattr(self.config, "cache", None)
        if cache is not None:
            cache.set(cache_key, value)

    def _from_cache(self, cache_key: str) -> str | None:
        cache = getattr(self.config, "cache", None)
        cached = cache.get(cache_key, None) if cache is not None else None
        evaluation_id = cached.get("evaluation_id") if isinstance(cached, dict) else None
        if not isinstance(evaluation_id, str):
            return None
        try:
            evaluation = self.client.get(evaluation_id)
        except NotFoundError:
            return None
        return evaluation_id if evaluation.status in REUSABLE else None

    def _from_listing(self, request: dict[str, Any]) -> str | None:
        since = datetime.now(UTC) - timedelta(hours=self.options.reuse_window)
        found = self.client.find_evaluation(
            request["job_id"],
            request["model_uri"],
            [Benchmark.coerce(b) for b in request["benchmarks"]],
            request["checkpoint_id"],
            since=since,
            statuses=REUSABLE,
            max_pages=MAX_LOOKUP_PAGES,
        )
        return found.evaluation_id if found is not None else None

    def _shared_dir(self) -> Path | None:
        """Under xdist, a directory all workers of this run share; None otherwise."""
        run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
        if not run or not hasattr(self.config, "workerinput"):
            return None
        path = Path(tempfile.gettempdir()) / "pytest-scaimind" / run
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _claimed(self, shared: Path, key: str, request: dict[str, Any]) -> tuple[str, bool]:
        """The first worker to claim the request finds or submits; the others read its answer."""
        answer = shared / f"{key}.json"
        try:
            os.close(os.open(shared / f"{key}.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            deadline = time.monotonic() + self.options.timeout
            while not answer.exists():
                if time.monotonic() > deadline:
                    raise InfraError(
                        f"another xdist worker did not finish submitting within --scaimind-timeout={self.options.timeout:g}s"
                    ) from None
                time.sleep(0.05)
            data = json.loads(answer.read_text())
            if "error" in data:
                raise InfraError(data["error"]) from None
            return data["evaluation_id"], data["reused"]
        try:
            evaluation_id, reused = self._find_or_submit(key, request)
        except (InfraError, ScaimindError) as exc:
            message = str(exc) if isinstance(exc, InfraError) else self._describe(exc)
            _write_atomic(answer, {"error": message})
            raise InfraError(message) from None
        _write_atomic(answer, {"evaluation_id": evaluation_id, "reused": reused})
        return evaluation_id, reused

    def _describe(self, exc: ScaimindError, evaluation_id: str | None = None) -> str:
        """One line for an infrastructure error: what failed, where, and the evaluation id if known."""
        where = f" (evaluation {evaluation_id})" if evaluation_id else ""
        if isinstance(exc, APIConnectionError):
            return f"cannot reach the coordinator at {self.host}{where}: {exc}"
        if isinstance(exc, ScaimindValueError):
            return f"invalid evaluation request (check pytest_scaimind_modify_request hooks): {exc}"
        return f"coordinator error at {self.host}{where}: {exc}"


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)
