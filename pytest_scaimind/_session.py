"""The active plugin (registered only with --scaimind-job): plans, obtains, judges and reports gates."""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_scaimind import _report
from pytest_scaimind._baseline import Baseline, BaselineError, is_live, stored_value
from pytest_scaimind._collect import ItemGates, Scanner
from pytest_scaimind._gates import Gate, Verdict, judge, label, make_gate
from pytest_scaimind._record import Action, GateRecord, Outcome

if TYPE_CHECKING:
    from pytest_scaimind._evaluations import Batch, Evaluations
    from pytest_scaimind._options import Options
    from scaimind_nb import BenchmarkResult, Client


class ScaimindSession:
    """Session-wide gate state: collected gates, batches, the client, and records for the reports."""

    def __init__(self, config: pytest.Config, options: Options) -> None:
        self.config = config
        self.options = options
        self.is_worker = hasattr(config, "workerinput")
        if options.report and Path(options.report).suffix.lower() not in (
            ".md",
            ".markdown",
            ".json",
        ):
            raise pytest.UsageError(
                f"--scaimind-report must end in .md or .json, got {options.report!r}"
            )
        if options.update_baseline and not options.baseline:
            raise pytest.UsageError(
                "--scaimind-update-baseline needs --scaimind-baseline=PATH to write to"
            )
        try:
            self.baseline = Baseline.load(options.baseline)
        except BaselineError as exc:
            raise pytest.UsageError(str(exc)) from None
        self.item_gates: dict[str, ItemGates] = {}
        self.batches: list[Batch] = []
        self.records: list[GateRecord] = []
        self._client: Client | None = None
        self._local: Any = None
        self._exit = contextlib.ExitStack()
        self._evaluations: Evaluations | None = None
        self._prepare_error: str | None = None
        self._live: dict[Any, Any] = {}

    # -- the coordinator -------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The coordinator as shown in messages and reports (never carries credentials)."""
        local = self._local_endpoint()
        if local is not None:
            return f"local {local[0]}"
        return (
            self.options.host or os.environ.get("SCAIGRID_HOST") or "(SCAIGRID_HOST unset)"
        ).rstrip("/")

    def _local_endpoint(self) -> tuple[str, str] | None:
        if self.options.host != "local":
            return None
        shared = getattr(self.config, "workerinput", {}).get("scaimind_local")
        if shared:
            return shared["url"], shared["api_key"]
        if self._local is None:
            self._start_local()
        return self._local.url, self._local.api_key

    def _start_local(self) -> None:
        """Serve the embedded coordinator for this session (closed at unconfigure)."""
        from scaimind_local import LocalCoordinator

        cache = getattr(self.config, "cache", None)
        if self.options.local_db and self.options.local_drive:
            base = Path()
        elif cache is not None:
            base = Path(cache.mkdir("scaimind-local"))
        else:
            base = Path(
                self._exit.enter_context(tempfile.TemporaryDirectory(prefix="scaimind-local-"))
            )
        self._local = self._exit.enter_context(
            LocalCoordinator(
                db_path=self.options.local_db or base / "coordinator.sqlite",
                drive_root=self.options.local_drive or base / "drive",
            )
        )
        if self.options.model_uri:
            self._local.register_job(self.options.job, self.options.model_uri)

    @property
    def client(self) -> Client:
        """The session's client, made on first use (imports httpx only then)."""
        if self._client is None:
            from scaimind_nb import Client

            local = self._local_endpoint()
            if local is not None:
                self._client = Client(local[0], local[1])
            else:
                self._client = Client(self.options.host or None)
        return self._client

    def _cache_host(self) -> str:
        """The host part of reuse keys: stable across runs even when the local port changes."""
        if self.options.host == "local":
            return "local:" + (self.options.local_db or "cache")
        return self.host

    # -- pytest hooks ----------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        if self.options.host == "local" and not self.is_worker:
            self._local_endpoint()

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Give xdist workers the controller's embedded coordinator instead of one each."""
        local = self._local_endpoint()
        if local is not None:
            node.workerinput["scaimind_local"] = {"url": local[0], "api_key": local[1]}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        scanner = Scanner()
        problems = []
        for item in items:
            try:
                found = scanner.scan(item)
            except (ValueError, TypeError) as exc:
                problems.append(f"{item.nodeid}: {exc}")
                continue
            if found is not None:
                self.item_gates[item.nodeid] = found
        if problems:
            raise pytest.UsageError("invalid benchmark gate arguments:\n  " + "\n  ".join(problems))
        from pytest_scaimind._evaluations import plan_batches

        self.batches = plan_batches(
            [g.spec for found in self.item_gates.values() for g in found.gates]
        )

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        """Before any test runs: resolve the model and submit (or find) the evaluations; wait later."""
        if self.config.option.collectonly or not self.item_gates:
            return
        evaluations = self._prepare()
        if evaluations is not None:
            for batch in self.batches:
                evaluations.start(batch)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """Gate tests wait for their evaluation here, so infrastructure problems ERROR in setup."""
        found = self.item_gates.get(item.nodeid)
        if found is None:
            return
        failures = []
        for gate in found.gates:
            problem = self._infra_problem(gate.spec)
            if problem is not None:
                failures.append(problem)
                self._record(item, gate, Verdict(gate, Outcome.ERROR, problem), Action.ERROR)
        if failures:
            pytest.fail("scaimind: " + "; ".join(dict.fromkeys(failures)), pytrace=False)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown" and not self.is_worker:
            self.records.extend(GateRecord.from_properties(report.user_properties))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.is_worker:
            return
        facts = self._facts()
        if self.options.update_baseline and self.records:
            self.baseline.bless(self.records, facts)
            self.baseline.save()
        if self.options.report and self.records:
            _report.write(self.options.report, self.records, facts)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary and self.records:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(_report.markdown(self.records, facts))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.is_worker or not self.records:
            return
        terminalreporter.write_sep("=", "scaimind quality gates")
        for line in _report.table(self.records):
            terminalreporter.write_line(line)
        facts = self._facts()
        reused = {r.evaluation_id for r in self.records if r.reused}
        evals = ", ".join(e + (" (reused)" if e in reused else "") for e in facts["evaluation_ids"])
        terminalreporter.write_line(
            f"job {facts['job_id']}, model {facts['model_uri']}, evaluation {evals or '-'}"
        )
        if self.options.update_baseline:
            terminalreporter.write_line(f"baseline updated: {self.options.baseline}")
        if self.options.report:
            terminalreporter.write_line(f"report written: {self.options.report}")

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self._client is not None:
            self._client.close()
        self._exit.close()

    # -- obtaining results -----------------------------------------------------------------

    def _prepare(self) -> Evaluations | None:
        """Resolve the model once; a missing model is a usage error, an unreachable host an infra one."""
        if self._evaluations is not None or self._prepare_error is not None:
            return self._evaluations
        from pytest_scaimind._evaluations import Evaluations
        from scaimind_nb import APIConnectionError, NotFoundError, ScaimindError, ScaimindValueError

        try:
            client = self.client
        except ScaimindValueError as exc:
            raise pytest.UsageError(
                f"scaimind gates need a coordinator: {exc} (or pass --scaimind-host URL|local)"
            ) from None
        model_uri = self.options.model_uri
        if not model_uri:
            how = "pass --scaimind-model-uri=URI (or set ini scaimind_model_uri / env SCAIMIND_MODEL_URI)"
            try:
                job = client.get_job(self.options.job or "")
            except NotFoundError:
                raise pytest.UsageError(
                    f"job {self.options.job} is unknown to {self.host}, so its model is too: {how}"
                ) from None
            except APIConnectionError as exc:
                self._prepare_error = f"cannot reach the coordinator at {self.host}: {exc}"
                return None
            except ScaimindError as exc:
                self._prepare_error = (
                    f"coordinator error at {self.host} reading job {self.options.job}: {exc}"
                )
                return None
            model_uri = job.get("model_uri") if isinstance(job, dict) else None
            if not model_uri:
                raise pytest.UsageError(
                    f"job {self.options.job} on {self.host} has no model_uri: {how}"
                )
        self._evaluations = Evaluations(
            self.config, self.options, client, self._cache_host(), model_uri
        )
        return self._evaluations

    def _batch_of(self, spec: Any) -> Batch:
        from pytest_scaimind._evaluations import plan_batches

        for batch in self.batches:
            if batch.holds(spec):
                return batch
        batch = plan_batches([spec])[0]
        self.batches.append(batch)
        return batch

    def _infra_problem(self, spec: Any) -> str | None:
        """Finish the evaluation holding `spec`; the one-line reason if it cannot give a result."""
        from pytest_scaimind._evaluations import InfraError

        evaluations = self._prepare()
        if evaluations is None:
            return self._prepare_error
        batch = self._batch_of(spec)
        try:
            evaluations.finish(batch)
        except InfraError as exc:
            return str(exc)
        assert batch.evaluation is not None
        if all(r.benchmark.lower() != spec.name.lower() for r in batch.evaluation.results):
            have = ", ".join(r.benchmark for r in batch.evaluation.results) or "none"
            return f"evaluation {batch.evaluation_id} completed without a result for {spec.name!r} (results: {have})"
        return None

    # -- judging ---------------------------------------------------------------------------

    def check(self, item: pytest.Item | None, name: str, **kwargs: Any) -> BenchmarkResult:
        """Judge one `assert_benchmark` call of `item`; returns the result or fails/skips the test."""
        __tracebackhide__ = True
        try:
            gate = make_gate(name, **kwargs)
        except (ValueError, TypeError) as exc:
            pytest.fail(f"assert_benchmark: {exc}", pytrace=False)
        problem = self._infra_problem(gate.spec)
        if problem is not None:
            if item is not None:
                self._record(item, gate, Verdict(gate, Outcome.ERROR, problem), Action.ERROR)
            pytest.fail(
                f"scaimind infrastructure error (not a quality verdict): {problem}", pytrace=False
            )
        batch = self._batch_of(gate.spec)
        assert batch.evaluation is not None
        result = batch.evaluation.result(gate.spec.name)
        verdict = self._judge(gate, result, batch.evaluation_id)
        action = Action(
            self.options.inconclusive
            if verdict.outcome is Outcome.INCONCLUSIVE
            else verdict.outcome.value
        )
        if item is not None:
            self._record(item, gate, verdict, action, result, reused=batch.reused)
        if action in (Action.FAIL, Action.ERROR):
            pytest.fail(verdict.message, pytrace=False)
        if action is Action.SKIP:
            pytest.skip(verdict.message)
        if verdict.outcome is Outcome.INCONCLUSIVE:
            warnings.warn(InconclusiveGateWarning(verdict.message), stacklevel=2)
        return result

    def _judge(self, gate: Gate, result: BenchmarkResult, evaluation_id: str | None) -> Verdict:
        from scaimind_nb import ScaimindError

        try:
            hooked = self.config.hook.pytest_scaimind_score(
                config=self.config, gate=gate, result=result
            )
            if hooked is not None:  # a house metric the coordinator does not report
                metric = gate.metric or result.primary_metric
                score, stderr, proportion = float(hooked), None, False
            else:
                metric = result.metric_name(gate.metric)
                score = result.value(metric)
                stderr, proportion = result.stderr_of(metric), result.is_proportion(metric)
        except (ScaimindError, KeyError) as exc:
            return Verdict(
                gate, Outcome.ERROR, f"{label(gate.spec)}: {exc}; evaluation {evaluation_id}"
            )
        n = result.num_samples or gate.spec.num_samples
        baseline, missing = (None, "")
        if gate.needs_baseline:
            baseline, missing = (
                (score, "") if self.options.update_baseline else self._baseline(gate, metric)
            )
        return judge(
            gate,
            metric=metric,
            score=score,
            n=n,
            evaluation_id=evaluation_id,
            baseline=baseline,
            baseline_missing=missing,
            stderr=stderr,
            proportion=proportion,
            inconclusive=self.options.inconclusive,
        )

    def _baseline(self, gate: Gate, metric: str) -> tuple[float | None, str]:
        """The reference value for `metric` of the gate's spec, or None and how to create one."""
        name = label(gate.spec)
        entry = self.baseline.entry(name)
        if entry is None:
            return None, self.baseline.missing_hint(name)
        if not is_live(entry):
            value = stored_value(entry, metric)
            return (
                value,
                "" if value is not None else f"baseline entry {name!r} has no metric {metric!r}",
            )
        try:
            result = self._live_result(entry, gate)
            return result.value(metric), ""
        except Exception as exc:
            source = entry.get("evaluation_id") or entry.get("job_id")
            return None, f"live baseline {source} gave no {metric!r} for {name!r}: {exc}"

    def _live_result(self, entry: dict[str, Any], gate: Gate) -> BenchmarkResult:
        """The result of the gate's spec in the evaluation or job a live baseline names."""
        from scaimind_nb import Status

        if "evaluation_id" in entry:
            evaluation_id = entry["evaluation_id"]
            if evaluation_id not in self._live:
                self._live[evaluation_id] = self.client.get(evaluation_id)
            return self._live[evaluation_id].result(gate.spec.name)
        job_id = entry["job_id"]
        cache_key = (job_id, gate.spec.key())
        if cache_key not in self._live:
            model_uri = entry.get("model_uri") or self.client.get_job(job_id)["model_uri"]
            self._live[cache_key] = self.client.find_evaluation(
                job_id,
                model_uri,
                [gate.spec],
                entry.get("checkpoint_id", ""),
                since=datetime.now(UTC) - timedelta(hours=self.options.reuse_window),
                statuses=(Status.COMPLETED,),
            )
        found = self._live[cache_key]
        if found is None:
            raise LookupError(
                f"no COMPLETED evaluation of job {job_id} with this spec in the reuse window"
            )
        return found.result(gate.spec.name)

    # -- records ---------------------------------------------------------------------------

    def _record(
        self,
        item: pytest.Item,
        gate: Gate,
        verdict: Verdict,
        action: Action,
        result: BenchmarkResult | None = None,
        *,
        reused: bool | None = None,
    ) -> None:
        """Attach the gate's record to the test as JUnit properties (and so to the reports)."""
        criteria = {
            k: getattr(gate, k)
            for k in ("min_score", "max_drop", "max_rel_drop", "metric", "confidence")
            if getattr(gate, k) is not None
        }
        record = GateRecord(
            test=item.nodeid,
            benchmark=label(gate.spec),
            spec=gate.spec.to_request(),
            verdict=verdict.outcome,
            action=action,
            message=verdict.message,
            criteria=criteria,
            metric=verdict.metric,
            score=verdict.score,
            threshold=verdict.threshold,
            baseline=verdict.baseline,
            delta=verdict.delta,
            n=verdict.n,
            confidence=gate.confidence,
            ci_low=verdict.interval[0] if verdict.interval else None,
            ci_high=verdict.interval[1] if verdict.interval else None,
            n_needed=verdict.n_needed,
            evaluation_id=verdict.evaluation_id,
            reused=reused,
            metrics=dict(result.metrics) if result is not None else None,
            stderr=dict(result.stderr) if result is not None else None,
            job_id=self.options.job,
            model_uri=self._evaluations.model_uri if self._evaluations else self.options.model_uri,
            checkpoint_id=self.options.checkpoint,
            host=self.host,
        )
        item.user_properties.extend(record.to_properties())

    def _facts(self) -> dict[str, Any]:
        return _report.context(
            self.records,
            {
                "job_id": self.options.job,
                "model_uri": self.options.model_uri,
                "checkpoint_id": self.options.checkpoint,
                "host": self.options.host,
            },
        )


class InconclusiveGateWarning(UserWarning):
    """A confidence gate passed under --scaimind-inconclusive=pass without a decisive interval."""
