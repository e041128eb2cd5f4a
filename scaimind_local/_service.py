"""The coordinator's core: validates submissions and runs the queue with worker threads."""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from dataclasses import asdict
from typing import Any

from scaimind_nb._contract import SPEC_FIELDS, FailureCode, Field, Status, failure

from ._backends import MODELS, check_model, model_digest, read_manifest
from ._benchmarks.base import (
    BenchmarkCancelled,
    BenchmarkRunner,
    BenchmarkSpec,
    DataInfo,
    InvalidBenchmark,
    RunContext,
    RunnerResult,
)
from ._drive import Drive
from ._registry import Registry
from ._sandbox import Isolation, probe
from ._store import CANCELLED_ERROR, MAX_ATTEMPTS, Store

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

    def model_digest(self, model_uri: str) -> str:
        """The model's digest; InvalidBenchmark when it cannot be resolved or loaded here."""
        manifest = read_manifest(self.drive.resolve(model_uri))
        check_model(manifest, self.settings)
        return model_digest(manifest)

    def describe(self, spec: BenchmarkSpec, ctx: RunContext | None = None) -> DataInfo | None:
        """Check one spec; what data it scores (None for a runner that cannot describe it)."""
        ctx = ctx or self.context("")
        runner = self.registry.get(spec.name)
        describe = getattr(runner, "describe", None)
        if describe is None:
            runner.validate(spec, ctx)
            return None
        info: DataInfo = describe(spec, ctx)
        return info

    def check(self, what: Any, *args: Any) -> tuple[Any, str | None]:
        """`what(*args)` as (value, None), or (None, the problem) when it raises InvalidBenchmark."""
        try:
            return what(*args), None
        except InvalidBenchmark as exc:
            return None, self.drive.hide(str(exc))

    def validate(
        self, model_uri: str, specs: list[BenchmarkSpec]
    ) -> tuple[str, list[DataInfo | None]]:
        """The model's digest and each spec's data; InvalidBenchmark (-> 400) for the first problem."""
        try:
            digest = self.model_digest(model_uri)
            ctx = self.context("")
            return digest, [self.describe(spec, ctx) for spec in specs]
        except InvalidBenchmark as exc:
            raise InvalidBenchmark(self.drive.hide(str(exc))) from None

    def submit(
        self,
        job_id: str,
        model_uri: str,
        checkpoint_id: str,
        specs: list[BenchmarkSpec],
        idempotency: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        """Validate and queue an evaluation; ``idempotency`` is (Idempotency-Key, body fingerprint).

        The digests of the model and of each spec's data are taken now and recorded: they say
        what the evaluation scores, and a run refuses data or weights that changed since.
        """
        digest, infos = self.validate(model_uri, specs)
        benchmarks = [
            {**asdict(s), **({Field.DATA: asdict(info)} if info is not None else {})}
            for s, info in zip(specs, infos, strict=True)
        ]
        row = self.store.create_evaluation(
            job_id, model_uri, checkpoint_id, benchmarks, idempotency, digest
        )
        with self._wake:
            self._wake.notify()
        return row

    # workers

    @functools.cached_property
    def isolation(self) -> Isolation:
        """The kernel isolation this machine offers model-written code (probed once)."""
        return probe(self.settings.get("sandbox_bwrap"))

    def start(self) -> None:
        """Probe the isolation, requeue work a previous process left RUNNING, start the workers.

        Evaluations left RUNNING MAX_ATTEMPTS times end FAILED instead (see Store.requeue_running).
        """
        if not self.isolation.isolated:
            log.warning("no kernel isolation for model-written code: %s", self.isolation.detail)
        requeued, failed = self.store.requeue_running()
        if requeued:
            log.warning("requeued %d evaluation(s) left RUNNING by a previous process", requeued)
        if failed:
            log.warning(
                "%d evaluation(s) interrupted %d times by a dying process: FAILED, not requeued",
                failed,
                MAX_ATTEMPTS,
            )
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
        """Run every benchmark of a claimed evaluation; never raises.

        A benchmark that fails leaves a failed result (status, error) and the others still run;
        the evaluation then ends FAILED naming the failed benchmarks. Only a model that cannot
        be loaded, a cancel or a shutdown stop the whole evaluation.
        """
        eval_id = row["id"]
        results: list[dict[str, Any]] = row["results"]
        progress: list[dict[str, Any]] = row["progress"]
        done = {r["extra"].get("spec_index", i) for i, r in enumerate(results)}
        try:
            model = self._model(row)
            for index, raw in enumerate(row["benchmarks"]):
                if index in done:
                    continue
                if self._cancelled(eval_id):  # also between benchmarks, whatever the runner does
                    raise BenchmarkCancelled(eval_id)
                record, samples = self._run_spec(eval_id, index, raw, model, progress)
                results.append(record)
                self.store.add_result(
                    eval_id, results, progress, index, record[Field.BENCHMARK], samples
                )
        except _ServerStopping:
            self.store.release(eval_id)
            log.warning("server stopping: %s left RUNNING, requeued at the next start", eval_id)
            return
        except BenchmarkCancelled:
            self.store.finish(eval_id, Status.CANCELLED, CANCELLED_ERROR)
            return
        except InvalidBenchmark as exc:
            message = self.drive.hide(f"model: {exc}")
            self.store.finish(
                eval_id, Status.FAILED, failure(FailureCode.INVALID_ARGUMENT, message)
            )
            return
        except Exception as exc:
            log.exception("evaluation %s failed", eval_id)
            message = self.drive.hide(f"model failed: {type(exc).__name__}: {exc}")
            self.store.finish(
                eval_id, Status.FAILED, failure(FailureCode.BENCHMARK_FAILED, message)
            )
            return
        failed = [r for r in results if r.get(Field.STATUS) == Status.FAILED]
        if failed:
            message = "; ".join(
                f"benchmark {r[Field.BENCHMARK]} failed: {r[Field.ERROR]['message']}"
                for r in failed
            )
            self.store.finish(
                eval_id, Status.FAILED, failure(FailureCode.BENCHMARK_FAILED, message)
            )
            return
        self.store.finish(eval_id, Status.COMPLETED)

    def _model(self, row: dict[str, Any]) -> Any:
        """The evaluation's model, refused when its artefact changed since submit."""
        path = self.drive.resolve(row["model_uri"])
        digest = model_digest(read_manifest(path))
        recorded = row.get("model_digest")
        if recorded and digest != recorded:
            raise InvalidBenchmark(
                f"{row['model_uri']} changed since submit (digest {recorded} then, {digest} now); "
                "nothing was scored: submit again to evaluate the new artefact"
            )
        return self.models.get(row["model_uri"], path, self.settings, digest)

    def _run_spec(
        self,
        eval_id: str,
        index: int,
        raw: dict[str, Any],
        model: Any,
        progress: list[dict[str, Any]],
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """One benchmark: its result record and samples, or a failed result saying why."""
        spec = BenchmarkSpec(**{k: raw[k] for k in SPEC_FIELDS if k in raw})
        ctx = self.context(eval_id, _Progress(self.store, eval_id, progress, index))
        try:
            runner = self.registry.get(spec.name)
            self._same_data(runner, spec, ctx, raw, "before the run")
            out = runner.run(spec, model, ctx)
            self._same_data(runner, spec, ctx, raw, "during the run")
        except BenchmarkCancelled:
            raise
        except InvalidBenchmark as exc:
            return failed_record(
                spec.name, index, FailureCode.INVALID_ARGUMENT, self.drive.hide(str(exc))
            ), []
        except Exception as exc:
            log.exception("evaluation %s: benchmark %s failed", eval_id, spec.name)
            message = self.drive.hide(f"{type(exc).__name__}: {exc}")
            return failed_record(spec.name, index, FailureCode.BENCHMARK_FAILED, message), []
        progress[index] = {
            "benchmark": spec.name,
            "completed": out.num_samples,
            "total": out.num_samples,
        }
        return result_record(spec.name, index, out), out.samples

    def _same_data(
        self,
        runner: BenchmarkRunner,
        spec: BenchmarkSpec,
        ctx: RunContext,
        raw: dict[str, Any],
        when: str,
    ) -> None:
        """Refuse to score (or to record) data whose digest is not the one taken at submit."""
        recorded = (raw.get(Field.DATA) or {}).get(Field.DIGEST)
        describe = getattr(runner, "describe", None)
        if recorded is None or describe is None:
            return
        now = describe(spec, ctx)
        if now.digest != recorded:
            raise InvalidBenchmark(
                f"the data of {spec.name} ({now.source}) changed {when} (digest {recorded} at "
                f"submit, {now.digest} now); not scored: submit again to score the new data"
            )


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
    record[Field.STATUS] = Status.COMPLETED
    return record


def failed_record(
    benchmark: str, spec_index: int, code: FailureCode, message: str
) -> dict[str, Any]:
    """A benchmark that could not be scored: no metrics, status FAILED and the error."""
    return {
        Field.BENCHMARK: benchmark,
        Field.METRICS: {},
        Field.NUM_SAMPLES: 0,
        Field.EXTRA: {"spec_index": spec_index},
        Field.STATUS: Status.FAILED,
        Field.ERROR: failure(code, message),
    }


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
