"""The coordinator's core: validates submissions and runs the queue with worker threads."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import asdict
from typing import Any

from scaimind_nb._contract import Field, Status

from ._backends import MODELS, check_model, read_manifest
from ._benchmarks.base import (
    BenchmarkCancelled,
    BenchmarkSpec,
    InvalidBenchmark,
    RunContext,
    RunnerResult,
)
from ._drive import Drive
from ._registry import Registry
from ._store import CANCELLED_ERROR, Store

log = logging.getLogger("scaimind_local")
PROGRESS_INTERVAL = 0.2  # seconds between progress writes of one evaluation (<= 5/s)


class _ServerStopping(BaseException):
    """Raised at a sample boundary on shutdown; the evaluation stays RUNNING, requeued at start."""

    # a BaseException so that a runner's `except Exception` does not swallow it


class Service:
    """Store + drive + runner registry + the worker threads that drain the queue."""

    def __init__(
        self,
        store: Store,
        drive: Drive,
        *,
        workers: int = 1,
        settings: dict[str, Any] | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.store = store
        self.drive = drive
        self.workers = max(1, workers)
        self.settings = dict(settings or {})
        self.settings.setdefault("mmlu_data", os.environ.get("SCAIMIND_MMLU_DATA"))
        self.settings.setdefault("allow_local_paths", drive.allow_local_paths)
        self.settings.setdefault("sandbox_workers", 2)
        self.registry = registry or Registry()
        self.models = MODELS
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # submit-time validation

    def context(self, evaluation_id: str, progress: Any = None) -> RunContext:
        """The RunContext a runner sees (progress writes are a no-op at submit time)."""
        return RunContext(
            evaluation_id=evaluation_id,
            resolve_path=self.drive.resolve,
            report_progress=progress or (lambda done, total: None),
            is_cancelled=lambda: self._cancelled(evaluation_id),
            settings=self.settings,
            workers=int(self.settings.get("sandbox_workers") or 2),
        )

    def _cancelled(self, evaluation_id: str) -> bool:
        if self._stopping.is_set():
            raise _ServerStopping(evaluation_id)
        return self.store.cancel_requested(evaluation_id)

    def validate(self, model_uri: str, specs: list[BenchmarkSpec]) -> None:
        """Raise InvalidBenchmark (-> 400) for a model or spec this server cannot run."""
        check_model(read_manifest(self.drive.resolve(model_uri)), self.settings)
        ctx = self.context("")
        for spec in specs:
            self.registry.get(spec.name).validate(spec, ctx)

    def submit(
        self,
        job_id: str,
        model_uri: str,
        checkpoint_id: str,
        specs: list[BenchmarkSpec],
        idempotency: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        """Validate and queue an evaluation; ``idempotency`` is (Idempotency-Key, body fingerprint)."""
        self.validate(model_uri, specs)
        benchmarks = [asdict(s) for s in specs]
        row = self.store.create_evaluation(
            job_id, model_uri, checkpoint_id, benchmarks, idempotency
        )
        with self._wake:
            self._wake.notify()
        return row

    # workers

    def start(self) -> None:
        """Requeue work a previous process left RUNNING, then start the workers."""
        requeued = self.store.requeue_running()
        if requeued:
            log.warning("requeued %d evaluation(s) left RUNNING by a previous process", requeued)
        for i in range(self.workers):
            t = threading.Thread(target=self._work, name=f"scaimind-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 10) -> None:
        self._stopping.set()
        with self._wake:
            self._wake.notify_all()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()

    def _work(self) -> None:
        try:
            while not self._stopping.is_set():
                row = self.store.claim_next()
                if row is None:
                    with self._wake:
                        self._wake.wait(0.5)
                    continue
                self.run(row)
        finally:
            self.store.close()

    def run(self, row: dict[str, Any]) -> None:
        """Run every benchmark of a claimed evaluation; never raises."""
        eval_id = row["id"]
        results: list[dict[str, Any]] = row["results"]
        progress: list[dict[str, Any]] = row["progress"]
        done = {r["extra"].get("spec_index", i) for i, r in enumerate(results)}
        current = "model"
        try:
            path = self.drive.resolve(row["model_uri"])
            model = self.models.get(path, self.settings)
            for index, raw in enumerate(row["benchmarks"]):
                if index in done:
                    continue
                if self._cancelled(eval_id):  # also between benchmarks, whatever the runner does
                    raise BenchmarkCancelled(eval_id)
                spec = BenchmarkSpec(**raw)
                current = f"benchmark {spec.name}"
                runner = self.registry.get(spec.name)
                ctx = self.context(eval_id, _Progress(self.store, eval_id, progress, index))
                out = runner.run(spec, model, ctx)
                progress[index] = {
                    "benchmark": spec.name,
                    "completed": out.num_samples,
                    "total": out.num_samples,
                }
                results.append(result_record(spec.name, index, out))
                self.store.add_result(eval_id, results, progress, index, spec.name, out.samples)
        except _ServerStopping:
            log.warning("server stopping: %s left RUNNING, requeued at the next start", eval_id)
            return
        except BenchmarkCancelled:
            self.store.finish(eval_id, Status.CANCELLED, CANCELLED_ERROR)
            return
        except InvalidBenchmark as exc:
            message = f"{current}: {exc}"
            self.store.finish(
                eval_id, Status.FAILED, {"code": "INVALID_ARGUMENT", "message": message}
            )
            return
        except Exception as exc:
            log.exception("evaluation %s failed", eval_id)
            message = f"{current} failed: {type(exc).__name__}: {exc}"
            self.store.finish(
                eval_id, Status.FAILED, {"code": "BENCHMARK_FAILED", "message": message}
            )
            return
        self.store.finish(eval_id, Status.COMPLETED)


def result_record(benchmark: str, spec_index: int, out: RunnerResult) -> dict[str, Any]:
    """A runner's result as the record stores it: a score only where a primary metric exists."""
    metrics = {k: float(v) for k, v in out.metrics.items()}
    primary = out.primary_metric if out.primary_metric in metrics else None
    if primary is None and len(metrics) == 1:
        primary = next(iter(metrics))
    record: dict[str, Any] = {Field.BENCHMARK: benchmark}
    if primary is not None:
        record[Field.SCORE] = metrics[primary]
        record[Field.PRIMARY_METRIC] = primary
    record[Field.METRICS] = metrics
    record[Field.PROPORTIONS] = [m for m in out.proportions if m in metrics]
    record[Field.STDERR] = {k: float(v) for k, v in out.stderr.items() if v is not None}
    record[Field.NUM_SAMPLES] = out.num_samples
    record[Field.EXTRA] = {**out.extra, "spec_index": spec_index}
    return record


class _Progress:
    """Writes one spec's progress to the store, at most every PROGRESS_INTERVAL (and the last)."""

    def __init__(self, store: Store, eval_id: str, progress: list[dict[str, Any]], index: int):
        self.store, self.eval_id, self.progress, self.index = store, eval_id, progress, index
        self.last = 0.0

    def __call__(self, done: int, total: int) -> None:
        self.progress[self.index] = {
            "benchmark": self.progress[self.index]["benchmark"],
            "completed": done,
            "total": total,
        }
        now = time.monotonic()
        if done >= total or now - self.last >= PROGRESS_INTERVAL:
            self.last = now
            self.store.set_progress(self.eval_id, self.progress)
