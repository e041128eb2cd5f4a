"""The active plugin (registered only with --scaimind-job): plans, obtains, judges and reports gates."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import tempfile
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from pytest_scaimind import InconclusiveGateWarning
from pytest_scaimind._baseline import (
    Baseline,
    BaselineError,
    is_live,
    is_proportion,
    stored_metric,
    stored_stderr,
    stored_value,
)
from pytest_scaimind._collect import ItemGates, Scanner, proportion_scale_problem
from pytest_scaimind._gates import (
    NO_CRITERION,
    Assessment,
    Decision,
    Gate,
    Measured,
    Reference,
    Verdict,
    assess,
    holm_decisions,
    label,
    make_gate,
    power,
)
from pytest_scaimind._policy import PREFIX, GateError
from pytest_scaimind._record import Action, GateRecord, Outcome
from pytest_scaimind._reporting import Reporter

if TYPE_CHECKING:
    from pytest_scaimind._evaluations import Evaluations, NoResult, Serving
    from pytest_scaimind._options import Options
    from scaimind_nb import Benchmark, BenchmarkResult, Client, Evaluation
    from scaimind_nb.stats import ItemOutcomes


class ScaimindSession:
    """Session-wide gate state: collected gates, their evaluations, the client, and records for the reports."""

    def __init__(self, config: pytest.Config, options: Options) -> None:
        self.config = config
        self.options = options
        self.is_worker = hasattr(config, "workerinput")
        try:
            self.baseline = Baseline.load(options.baseline)
        except BaselineError as exc:
            raise pytest.UsageError(str(exc)) from None
        self.item_gates: dict[str, ItemGates] = {}
        self.specs: list[Benchmark] = []
        self.records: list[GateRecord] = []
        self._client: Client | None = None
        self._local: Any = None
        self._exit = contextlib.ExitStack()
        self._evaluations: Evaluations | None = None
        self._prepare_error: str | None = None
        self._live: dict[Any, Any] = {}
        self._interrupted = False
        self._order: dict[str, int] = {}
        self.local_is_temporary = False
        """The embedded coordinator's database goes with the session (no cache provider)."""
        # -- gates (issue 11) -------------------------------------------------------------
        self.power: dict[tuple[Any, ...], str] = {}
        """Power warnings found at collection, per gate key."""
        self._samples: dict[tuple[str, str], ItemOutcomes | str] = {}
        self._decisions: dict[tuple[Any, ...], dict[int, Decision]] | None = None
        self.bless_changes: list[str] = []
        """What the bless step changed in the baseline file, one line per entry."""
        self.reports = Reporter(self)

    # -- the coordinator -------------------------------------------------------------------

    @property
    def host(self) -> str:
        """The coordinator as configured, for messages: its URL or `local` (no key, no passing port)."""
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
            self.local_is_temporary = self.options.local_db is None
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
        if (
            self.options.host == "local"
            and not self.is_worker
            and not self.config.option.collectonly
        ):
            self._local_endpoint()

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """Give xdist workers the controller's embedded coordinator instead of one each."""
        local = self._local_endpoint()
        if local is not None:
            node.workerinput["scaimind_local"] = {"url": local[0], "api_key": local[1]}
        self.reports.xdist_run = node.workerinput.get("testrunuid")

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self._order = {item.nodeid: i for i, item in enumerate(items)}
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
        self.specs = list(
            dict.fromkeys(g.spec for found in self.item_gates.values() for g in found.gates)
        )
        self._check_power()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> None:
        """Before any test runs: precheck, reuse what matches, submit the rest; wait later."""
        if self.config.option.collectonly or not self.item_gates:
            return
        evaluations = self._prepare()
        if evaluations is not None:
            evaluations.plan(self.specs)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """Gate tests wait for their evaluation here, so infrastructure problems ERROR in setup."""
        found = self.item_gates.get(item.nodeid)
        if found is None:
            return
        failures: list[NoResult] = []
        for gate in found.gates:
            problem = self._infra_problem(gate.spec)
            if problem is not None:
                failures.append(problem)
                error = Verdict(gate, Outcome.ERROR, str(problem))
                self._record(item, gate, error, Action.ERROR, infra=problem.infra)
        if failures:
            message = "; ".join(dict.fromkeys(str(f) for f in failures))
            raise GateError(PREFIX + message, infra=all(f.infra for f in failures))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker:
            return
        outcome = self.reports.note_outcome(report)
        if report.when == "teardown":
            for record in GateRecord.from_properties(report.user_properties):
                record.outcome = outcome
                self.records.append(record)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_worker:
            return
        self.reports.remove_handoff_dir()
        if not self.records:
            return
        run = self.reports.finish(interrupted=exitstatus == pytest.ExitCode.INTERRUPTED)
        if self.options.update_baseline:
            self.bless_changes = self.baseline.bless(
                run.records,
                {
                    "job_id": run.job_id,
                    "model_uri": run.model_uri,
                    "checkpoint_id": run.checkpoint_id,
                },
                self._bless_outcomes(),
            )
            self.baseline.save()
        self.reports.write(run)

    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        self._interrupted = True

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.is_worker:
            if self._interrupted:
                self._report_left_running(terminalreporter)
            self.reports.summary(terminalreporter)

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
            self.config,
            self.options,
            client,
            self.host,
            self._cache_host(),
            model_uri,
            self._live_line,
        )
        return self._evaluations

    def _infra_problem(self, spec: Benchmark) -> NoResult | None:
        """Wait for the evaluation serving `spec`; why it gives no result (None when it does)."""
        from pytest_scaimind._evaluations import NoResult

        evaluations = self._prepare()
        if evaluations is None:
            return NoResult(self._prepare_error or "no coordinator", infra=True)
        try:
            evaluations.result(spec)
        except NoResult as exc:
            return exc
        return None

    def _served(self, spec: Benchmark) -> tuple[Serving, Evaluation]:
        """The serving and finished evaluation of a spec `_infra_problem` found no problem with."""
        assert self._evaluations is not None
        return self._evaluations.result(spec)

    def _serving(self, spec: Benchmark) -> Serving | None:
        """How `spec` is served, when it was planned."""
        return self._evaluations.servings.get(spec.key()) if self._evaluations else None

    def _live_line(self, line: str) -> None:
        """Write a line at once to the terminal, not to a test's captured output, so CI watchdogs
        see the session is alive (an xdist worker, which has no terminal, writes to stderr)."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            if reporter is None or self.is_worker:
                print(line, file=sys.__stderr__, flush=True)
                return
            reporter.ensure_newline()
            reporter.write_line(line)
            reporter.flush()

    def _report_left_running(self, terminalreporter: Any) -> None:
        """After Ctrl-C: the evaluations left running, how to resume and how to cancel them."""
        from pytest_scaimind._waiting import left_running

        if self._evaluations is None:
            return
        lines = left_running(
            self._evaluations.left_running(),
            self._evaluations.client.host,
            self.config.invocation_params.args,
            local=self.options.host == "local",
        )
        for line in lines:
            terminalreporter.write_line(line)

    # -- judging ---------------------------------------------------------------------------

    def check(self, item: pytest.Item | None, name: str, **kwargs: Any) -> BenchmarkResult:
        """Judge one `assert_benchmark` call of `item`; returns the result or fails/skips the test.

        A gate that cannot be judged (bad arguments, no criterion, infrastructure, a result
        without the metric) raises GateError: an ERROR, never a FAIL.
        """
        __tracebackhide__ = True
        try:
            gate = make_gate(name, spec_only=True, **kwargs)
        except (ValueError, TypeError) as exc:
            raise GateError(f"assert_benchmark: {exc}") from None
        if not gate.has_criterion:
            self._error(item, gate, f"assert_benchmark({name!r}) {NO_CRITERION}")
        problem = self._infra_problem(gate.spec)
        if problem is not None:
            self._error(item, gate, str(problem), infra=problem.infra)
        serving, evaluation = self._served(gate.spec)
        result = evaluation.result(serving.spec.name)
        verdict = self._verdict(gate, result, evaluation.evaluation_id)
        action = Action(
            self.options.inconclusive
            if verdict.outcome is Outcome.INCONCLUSIVE
            else verdict.outcome.value
        )
        if item is not None:
            self._record(item, gate, verdict, action, result)
        if action is Action.ERROR:
            raise GateError(verdict.message)
        if action is Action.FAIL:
            pytest.fail(verdict.message, pytrace=False)
        if action is Action.SKIP:
            pytest.skip(verdict.message)
        if verdict.outcome is Outcome.INCONCLUSIVE:
            warnings.warn(InconclusiveGateWarning(verdict.message), stacklevel=2)
        return result

    def _error(
        self, item: pytest.Item | None, gate: Gate, message: str, *, infra: bool = False
    ) -> NoReturn:
        """Record the gate as ERROR and raise it (pytest reports an ERROR)."""
        __tracebackhide__ = True
        if item is not None:
            self._record(
                item, gate, Verdict(gate, Outcome.ERROR, message), Action.ERROR, infra=infra
            )
        suffix = " (an infrastructure error, not a quality verdict)" if infra else ""
        raise GateError(f"{PREFIX}{message}{suffix}", infra=infra)

    def _verdict(self, gate: Gate, result: BenchmarkResult, evaluation_id: str | None) -> Verdict:
        """Assess the gate and decide it: on its own, or in the Holm family of the session."""
        assessment = self._assess(gate, result, evaluation_id)
        if isinstance(assessment, Verdict):
            return assessment
        decisions = None
        if (
            self.options.correction == "holm"
            and gate.confidence is not None
            and assessment.decided is None
        ):
            decisions = self._family().get(gate.key())
            if decisions is None:
                return Verdict(
                    gate,
                    Outcome.ERROR,
                    f"{label(gate.spec)}: --scaimind-correction=holm decides the confidence gates "
                    "known at collection as one family, and this one's arguments are only known "
                    "at run time: write them as literals, module constants or parametrize "
                    f"values; evaluation {evaluation_id}",
                    evaluation_id=evaluation_id,
                )
        return assessment.verdict(self.options.inconclusive, decisions)

    def _family(self) -> dict[tuple[Any, ...], dict[int, Decision]]:
        """Holm decisions for every confidence gate collected in the session (computed once).

        Waits for every evaluation those gates need; gates whose evaluation errors, or that
        are decided without an interval, are not in the family.
        """
        if self._decisions is not None:
            return self._decisions
        members: dict[tuple[Any, ...], Gate] = {}
        for found in self.item_gates.values():
            for gate in found.gates:
                if gate.confidence is not None and gate.has_criterion:
                    members.setdefault(gate.key(), gate)
        assessments: list[Assessment] = []
        for gate in members.values():
            if self._infra_problem(gate.spec) is not None:
                continue
            serving, evaluation = self._served(gate.spec)
            assessed = self._assess(
                gate, evaluation.result(serving.spec.name), evaluation.evaluation_id
            )
            if isinstance(assessed, Assessment) and assessed.decided is None:
                assessments.append(assessed)
        strictest = max((a.gate.confidence or 0.0) for a in assessments) if assessments else 0.95
        decided = holm_decisions(assessments, strictest)
        self._decisions = {a.gate.key(): d for a, d in zip(assessments, decided, strict=True)}
        return self._decisions

    def _assess(
        self, gate: Gate, result: BenchmarkResult, evaluation_id: str | None
    ) -> Assessment | Verdict:
        """The gate's figures (candidate, baseline, per-item outcomes where pairing may use them)."""
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
        scale = proportion_scale_problem(gate, metric) if proportion else None
        if scale is not None:
            message = f"{label(gate.spec)}: {scale}; evaluation {evaluation_id}"
            return Verdict(gate, Outcome.ERROR, message, metric=metric, score=score)
        n = result.num_samples or gate.spec.num_samples
        blessing = self.options.update_baseline
        reference, missing = (None, "")
        if gate.needs_baseline and not blessing:
            reference, missing = self._reference(gate, metric)
        items, note = None, ""
        if (
            gate.confidence is not None
            and reference is not None
            and reference.items is not None
            and hooked is None
            and evaluation_id is not None
        ):
            items, note = self.result_item_outcomes(evaluation_id, gate.spec.name, metric, result)
        measured = Measured(
            metric, score, n, evaluation_id, stderr, proportion, items=items, items_note=note
        )
        return assess(gate, measured, reference, baseline_missing=missing, blessing=blessing)

    def _reference(self, gate: Gate, metric: str) -> tuple[Reference | None, str]:
        """The gate's baseline (stored or live), or None and how to create one.

        Per-item outcomes are looked up only for confidence gates, which may pair on them.
        """
        name = label(gate.spec)
        entry = self.baseline.entry(name)
        if entry is None:
            return None, self.baseline.missing_hint(name)
        pairing = gate.confidence is not None
        if not is_live(entry):
            value = stored_value(entry, metric)
            if value is None:
                return None, f"baseline entry {name!r} has no metric {metric!r}"
            items, note = self.baseline.items(name, metric) if pairing else (None, "")
            return Reference(
                value,
                "baseline file",
                entry.get("num_samples"),
                stored_stderr(entry, metric),
                items,
                note,
            ), ""
        try:
            evaluation_id, result = self._live_result(entry, gate)
            value = result.value(metric)
        except Exception as exc:
            source = entry.get("evaluation_id") or entry.get("job_id")
            return None, f"live baseline {source} gave no {metric!r} for {name!r}: {exc}"
        items, note = (
            self.result_item_outcomes(evaluation_id, gate.spec.name, metric, result)
            if pairing
            else (None, "")
        )
        source = (
            f"evaluation {evaluation_id}"
            if "evaluation_id" in entry
            else f"job {entry['job_id']} (evaluation {evaluation_id})"
        )
        return Reference(
            value, source, result.num_samples, result.stderr_of(metric), items, note
        ), ""

    def item_outcomes(
        self,
        evaluation_id: str,
        benchmark: str,
        metric: str,
        primary: str | None,
        value: float | None,
    ) -> tuple[ItemOutcomes | None, str]:
        """The per-item outcomes of `metric` in an evaluation (fetched once), or None and why.

        They are used only when they measure `metric`: the result's `primary` metric, whose
        `value` their mean reproduces.
        """
        found = self._fetch_items(evaluation_id, benchmark)
        if isinstance(found, str):
            return None, found
        if found.n == 0:
            return None, f"evaluation {evaluation_id} stored no per-item outcomes"
        if primary != metric:
            return None, f"the per-item outcomes measure {primary}, not {metric}"
        if value is None:
            return None, f"evaluation {evaluation_id} reports no {metric} to pair on"
        if abs(found.mean - value) > 1e-6:
            return None, (
                f"the per-item outcomes of evaluation {evaluation_id} (mean {found.mean:.4f}) "
                f"do not reproduce its {metric} {value:.4f}"
            )
        return found, ""

    def result_item_outcomes(
        self, evaluation_id: str, benchmark: str, metric: str, result: BenchmarkResult
    ) -> tuple[ItemOutcomes | None, str]:
        """`item_outcomes` for `metric` of a result the coordinator returned."""
        return self.item_outcomes(
            evaluation_id, benchmark, metric, result.primary_metric, result.value(metric)
        )

    def _fetch_items(self, evaluation_id: str, benchmark: str) -> ItemOutcomes | str:
        """An evaluation's per-item outcomes of one benchmark (fetched once), or why there are none."""
        from scaimind_nb import SamplesNotAvailableError, ScaimindError
        from scaimind_nb.stats import ItemOutcomes

        key = (evaluation_id, benchmark)
        if key not in self._samples:
            try:
                self._samples[key] = ItemOutcomes.from_samples(
                    self.client.samples(evaluation_id, benchmark)
                )
            except SamplesNotAvailableError as exc:
                self._samples[key] = f"per-item outcomes are not available ({exc.reason})"
            except ScaimindError as exc:
                self._samples[key] = f"per-item outcomes could not be read ({exc})"
        return self._samples[key]

    def _live_result(self, entry: dict[str, Any], gate: Gate) -> tuple[str, BenchmarkResult]:
        """The evaluation id and result of the gate's spec in the evaluation or job an entry names."""
        evaluation = self.live_evaluation(entry, [gate.spec])
        return evaluation.evaluation_id, evaluation.result(gate.spec.name)

    def live_evaluation(self, entry: dict[str, Any], specs: list[Benchmark]) -> Evaluation:
        """The evaluation a live reference names: `{evaluation_id}`, or `{job_id}`'s newest
        COMPLETED one of exactly `specs` in the reuse window (LookupError when there is none)."""
        from scaimind_nb import Status

        if "evaluation_id" in entry:
            evaluation_id = entry["evaluation_id"]
            if evaluation_id not in self._live:
                self._live[evaluation_id] = self.client.get(evaluation_id)
            evaluation: Evaluation = self._live[evaluation_id]
            return evaluation
        job_id = entry["job_id"]
        cache_key = (job_id, tuple(sorted(s.key() for s in specs)))
        if cache_key not in self._live:
            model_uri = entry.get("model_uri") or self.client.get_job(job_id)["model_uri"]
            self._live[cache_key] = self.client.find_evaluation(
                job_id,
                model_uri,
                specs,
                entry.get("checkpoint_id", ""),
                since=datetime.now(UTC) - timedelta(hours=self.options.reuse_window),
                statuses=(Status.COMPLETED,),
            )
        found: Evaluation | None = self._live[cache_key]
        if found is None:
            raise LookupError(
                f"no COMPLETED evaluation of job {job_id} with "
                f"{'this spec' if len(specs) == 1 else 'these specs'} in the reuse window"
            )
        return found

    # -- power and bless -------------------------------------------------------------------

    def _check_power(self) -> None:
        """At collection: warn about regression gates whose margin is below the noise."""
        for found in self.item_gates.values():
            for gate in found.gates:
                if gate.key() not in self.power:
                    warning = self._power_warning(gate)
                    if warning is not None:
                        self.power[gate.key()] = warning

    def _power_warning(self, gate: Gate) -> str | None:
        """The power warning of one gate from its spec and the baseline file (no requests)."""
        entry = self.baseline.entry(label(gate.spec))
        stored = entry if entry is not None and not is_live(entry) else None
        n = gate.spec.num_samples or (stored or {}).get("num_samples")
        metric = stored_metric(stored, gate.metric) if stored else None
        found = power(
            gate,
            n,
            baseline=stored_value(stored, metric) if stored and metric else None,
            baseline_stderr=stored_stderr(stored, metric) if stored and metric else None,
            discordance=((stored or {}).get("discordance") or {}).get("rate"),
            proportion=is_proportion(stored, metric) if stored and metric else True,
        )
        return found.warning if found is not None else None

    def _bless_outcomes(self) -> dict[str, ItemOutcomes | str]:
        """Per-item outcomes of every blessed spec (or why there are none), for the file."""
        out: dict[str, ItemOutcomes | str] = {}
        for record in self.records:
            primary = record.primary_metric
            if (
                record.metrics is None
                or record.evaluation_id is None
                or primary is None
                or record.benchmark in out
            ):
                continue
            name = str(record.spec.get("name", ""))
            items, note = self.item_outcomes(
                record.evaluation_id, name, primary, primary, record.metrics.get(primary)
            )
            out[record.benchmark] = items if items is not None else note
        return out

    # -- records ---------------------------------------------------------------------------

    def _record(
        self,
        item: pytest.Item,
        gate: Gate,
        verdict: Verdict,
        action: Action,
        result: BenchmarkResult | None = None,
        *,
        infra: bool = False,
    ) -> None:
        """Attach the gate's record to the test as JUnit properties (and so to the reports)."""
        serving = self._serving(gate.spec)
        evaluation = self._evaluations.snapshot(serving) if self._evaluations else None
        data = evaluation.data_info(serving.spec.name) if evaluation and serving else None
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
            ci_low=verdict.interval.low if verdict.interval else None,
            ci_high=verdict.interval.high if verdict.interval else None,
            n_needed=verdict.n_needed,
            evaluation_id=verdict.evaluation_id or (serving.evaluation_id if serving else None),
            reused=serving.reused if serving is not None else None,
            metrics=dict(result.metrics) if result is not None else None,
            stderr=dict(result.stderr) if result is not None else None,
            job_id=self.options.job,
            model_uri=self.model_uri,
            checkpoint_id=self.options.checkpoint,
            host=self.host,
            index=self._order.get(item.nodeid),
            proportion=_judged_proportion(result, verdict.metric),
            model_digest=evaluation.model_digest if evaluation is not None else None,
            data=dataclasses.asdict(data) if data is not None else None,
            baseline_source=self._baseline_source(gate) if verdict.baseline is not None else None,
            **self._verdict_fields(gate, verdict, result, infra),
            # reuse
            content_verified=serving.verified if serving is not None else None,
        )
        item.user_properties.extend(record.to_properties())

    def _verdict_fields(
        self, gate: Gate, verdict: Verdict, result: BenchmarkResult | None, infra: bool
    ) -> dict[str, Any]:
        """The gates' part of a record: method, Δ interval, counts, p-value, power, correction."""
        diff = verdict.difference
        method = diff.method if diff else (verdict.interval.method if verdict.interval else None)
        primary = None
        if result is not None and result.metrics:
            with contextlib.suppress(KeyError):
                primary = result.primary_metric
        warning = self.power.get(gate.key()) or (
            self._power_warning(gate) if gate.has_criterion else None
        )
        return {
            "primary_metric": primary,
            "proportions": sorted(result.proportions)
            if result is not None and result.proportions is not None
            else None,
            "method": method,
            "paired": diff.paired if diff else None,
            "delta_ci_low": diff.interval.low if diff else None,
            "delta_ci_high": diff.interval.high if diff else None,
            "worse": diff.worse if diff else None,
            "better": diff.better if diff else None,
            "margin": verdict.margin,
            "p_value": verdict.p_value,
            "correction": self.options.correction if gate.confidence is not None else None,
            "family_size": verdict.corrected.family_size if verdict.corrected else None,
            "power_warning": warning,
            "infra": infra,
        }

    @property
    def model_uri(self) -> str | None:
        """The model the gates scored: the option's, or the one resolved from the job."""
        return self._evaluations.model_uri if self._evaluations else self.options.model_uri

    def _baseline_source(self, gate: Gate) -> dict[str, Any]:
        """Where a gate's baseline value came from, for the reports: the file and entry, and
        the figures' recorded source (stored) or the evaluation a live entry resolved to."""
        name = label(gate.spec)
        entry = self.baseline.entry(name) or {}
        if is_live(entry):
            source: dict[str, Any] = {
                k: entry[k] for k in ("evaluation_id", "job_id") if k in entry
            }
            if "job_id" in entry:  # judged already, so the lookup is cached
                with contextlib.suppress(LookupError):
                    source["evaluation_id"] = self.live_evaluation(entry, [gate.spec]).evaluation_id
        else:
            source = dict(entry.get("source") or {})
        return {
            **source,
            "kind": "live" if is_live(entry) else "stored",
            "file": self.reports.display_path(self.baseline.path),
            "entry": name if name in self.baseline.benchmarks else "default",
        }


def _judged_proportion(result: BenchmarkResult | None, metric: str | None) -> bool | None:
    """Whether the result declares the judged metric a proportion (None: it cannot say)."""
    from scaimind_nb import ScaimindError

    if result is None or metric is None:
        return None
    try:
        return result.is_proportion(metric)
    except (ScaimindError, KeyError):
        return None
