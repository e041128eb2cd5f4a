"""The session's outputs: pytest's outcome of each gate test, the Run, the comparison, the history.

The session hands every gate record it receives (in the controller, under xdist) to this
object; at sessionfinish it becomes one `Run` that the terminal summary, the report file,
`$GITHUB_STEP_SUMMARY` and the history line all render.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_scaimind import _report
from pytest_scaimind._compare import Comparison, Then, compare
from pytest_scaimind._history import History, HistoryError, new_run_id
from pytest_scaimind._options import DEFAULT_HISTORY
from pytest_scaimind._record import GateRecord

if TYPE_CHECKING:
    from pytest_scaimind._session import ScaimindSession
    from scaimind_nb import Benchmark, Evaluation
    from scaimind_nb.stats import ItemOutcomes

_SAFE_RUN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
"""An xdist test run id that names a folder directly under the hand-off root, nothing else."""


class Reporter:
    """Collects what the reports need during the session and writes them at its end."""

    def __init__(self, session: ScaimindSession) -> None:
        self.session = session
        options, config = session.options, session.config
        self.run_id = new_run_id()
        default = str(config.rootpath / DEFAULT_HISTORY)
        self.history = History(
            Path(options.history) if options.history else None,
            gitignore=options.history == default,
        )
        self.xdist_run: str | None = None
        """The xdist test run id the controller handed its workers (their hand-off folder)."""
        self.run: _report.Run | None = None
        self.problems: list[str] = []
        """Outputs that could not be written (shown in the terminal summary)."""
        self._outcomes: dict[str, str] = {}
        self._batches: list[Any] | None = None
        self.reference: dict[str, Any] | None = None
        """The history entry --scaimind-compare names (None: an evaluation or job id, or none)."""
        if options.compare and not session.is_worker:
            try:
                self.reference = self.history.find(options.compare)
            except HistoryError as exc:
                raise pytest.UsageError(str(exc)) from None

    # -- during the session ----------------------------------------------------------------

    def note_outcome(self, report: pytest.TestReport) -> str | None:
        """Track pytest's outcome of a test across its phases; at teardown, return it."""
        config = self.session.config
        category = config.hook.pytest_report_teststatus(report=report, config=config)[0]
        if category and self._outcomes.get(report.nodeid, "passed") == "passed":
            self._outcomes[report.nodeid] = category
        return self._outcomes.pop(report.nodeid, None) if report.when == "teardown" else None

    def remove_handoff_dir(self) -> None:
        """Remove the folder the xdist workers shared their claims in (the controller's job)."""
        if not self.xdist_run or not _SAFE_RUN.fullmatch(self.xdist_run):
            return
        from pytest_scaimind._evaluations import handoff_dir

        folder = handoff_dir(self.xdist_run)
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            folder.parent.rmdir()  # only when no other run's folder is left in it

    # -- at the end ------------------------------------------------------------------------

    def display_path(self, path: str | os.PathLike[str] | None) -> str | None:
        """A path relative to the rootdir when it lies inside it (reports travel), else absolute."""
        if path is None:
            return None
        full = Path(path).absolute()
        try:
            return full.relative_to(self.session.config.rootpath).as_posix()
        except ValueError:
            return str(full)

    def coordinator(self) -> _report.Coordinator:
        """The coordinator by its configured host: a URL, or the embedded one with its db and drive."""
        session = self.session
        if session.options.host != "local":
            host = without_credentials(session.host)
            url = host if host.startswith(("http://", "https://")) else None
            return _report.Coordinator(host, host, url)
        local = session._local
        if local is None:
            return _report.Coordinator("local", "local (embedded)")
        db = self.display_path(local.db_path) or ""
        drive = self.display_path(local.drive_root) or ""
        temporary = session.local_is_temporary
        kind = "embedded, temporary" if temporary else "embedded"
        return _report.Coordinator(
            "local",
            f"local ({kind}, db {db}, drive {drive})",
            None,
            {"db": db, "drive": drive},
            temporary,
        )

    def finish(self, interrupted: bool = False) -> _report.Run:
        """The session's Run (records in collection order), compared where asked."""
        from pytest_scaimind import _provenance
        from pytest_scaimind._baseline import FORMAT as BASELINE_FORMAT
        from pytest_scaimind._policy import statistics

        session = self.session
        records = list(session.records)
        baseline = session.baseline
        self.run = _report.Run(
            run_id=self.run_id,
            generated_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            job_id=session.options.job,
            model_uri=next((r.model_uri for r in records if r.model_uri), session.model_uri),
            checkpoint_id=session.options.checkpoint,
            coordinator=self.coordinator(),
            records=records,
            baseline=(
                {"path": self.display_path(baseline.path), "format": BASELINE_FORMAT}
                if baseline.path is not None
                else None
            ),
            provenance={
                "git": _provenance.git_info(session.config.rootpath),
                "versions": _provenance.versions(),
                "platform": _provenance.platform_name(),
            },
            history=None if interrupted else self.display_path(self.history.path),
            interrupted=interrupted,
            statistics=statistics(records, session.power.values(), session.options.correction),
        )
        self.run.comparison = self._comparison(self.run.records)
        return self.run

    def write(self, run: _report.Run) -> None:
        """The report file, the history line and the GitHub step summary; failures are shown, not raised."""
        options = self.session.options
        targets: list[tuple[str, Any]] = []
        if options.report:
            targets.append((f"report {options.report}", lambda: _report.write(options.report, run)))
        if run.history is not None:  # an interrupted session's gates are incomplete: no entry
            targets.append(
                (f"history {self.history.path}", lambda: self.history.append(run.to_json()))
            )
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            targets.append((f"$GITHUB_STEP_SUMMARY {summary}", lambda: _append(summary, run)))
        for what, action in targets:
            try:
                action()
            except OSError as exc:
                self.problems.append(f"could not write the {what}: {exc}")

    def summary(self, terminalreporter: Any) -> None:
        """The terminal section: the gate table, its facts, the outputs, the comparison."""
        run = self.run
        if run is None:
            return
        config = self.session.config
        width = config.get_terminal_writer().fullwidth
        full = config.get_verbosity() > 0
        terminalreporter.write_sep("=", "scaimind quality gates")
        lines = _report.terminal(run, width, full)
        options = self.session.options
        outputs = []
        if options.update_baseline:
            outputs.append(f"baseline updated: {self.display_path(options.baseline)}")
            outputs += self.session.bless_changes
        if options.report:
            outputs.append(f"report written: {self.display_path(options.report)}")
        if run.history:
            outputs.append(f"history: {run.history} (run {run.run_id})")
        elif run.interrupted and self.history.path is not None:
            outputs.append("history: not appended, the session was interrupted")
        lines += outputs + self.problems
        if run.comparison is not None:
            lines += ["", f"compared with {run.comparison.reference.get('label', '')}"]
            lines += _report.comparison_lines(run.comparison, width, full)
        for line in lines:
            terminalreporter.write_line(line)

    # -- the comparison --------------------------------------------------------------------

    def _comparison(self, records: list[GateRecord]) -> Comparison | None:
        """This session against --scaimind-compare's reference, else the baseline file, else None."""
        from scaimind_nb import ScaimindError

        session = self.session
        ref = session.options.compare
        baseline = session.baseline
        if ref is None and (baseline.path is None or not (baseline.benchmarks or baseline.default)):
            return None
        reference: dict[str, Any] = {"ref": ref or "baseline"}
        try:
            if ref is None:
                reference.update(
                    kind="baseline",
                    file=self.display_path(baseline.path),
                    label=f"the baseline {self.display_path(baseline.path)}",
                )
                then_of = self._then_baseline
            elif self.reference is not None:
                then_of = self._then_history(self.reference, reference)
            else:
                then_of = self._then_coordinator(ref, reference)
            return Comparison(reference, compare(records, then_of, self._record_items))
        except (ScaimindError, LookupError) as exc:
            reference.setdefault("label", str(ref))
            return Comparison(reference, error=str(exc))

    def _then_history(self, entry: dict[str, Any], reference: dict[str, Any]) -> Any:
        gates = []
        for data in entry.get("gates") or []:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                gates.append(GateRecord.from_json(data))
        model = (entry.get("model") or {}).get("uri")
        reference.update(
            kind="history",
            run_id=entry.get("run_id"),
            generated_at=entry.get("generated_at"),
            model_uri=model,
            label=f"history run {entry.get('run_id')} ({entry.get('generated_at')})",
        )
        by_test = {(g.test, g.benchmark): g for g in gates}
        by_spec: dict[str, GateRecord] = {}
        for g in gates:
            by_spec.setdefault(g.benchmark, g)

        def then_of(record: GateRecord) -> Then | None:
            same_gate = by_test.get((record.test, record.benchmark))
            then = same_gate or by_spec.get(record.benchmark)
            if then is None:
                return None
            metric = record.metric or ""
            value = then.score if then.metric == record.metric else (then.metrics or {}).get(metric)
            return Then(
                value,
                then.n,
                (then.stderr or {}).get(metric),
                then.proportion,
                then.evaluation_id,
                then.action.value if same_gate is not None else None,
                "" if value is not None else f"no {metric} then",
                self._items(then, metric, value),
            )

        return then_of

    def _then_coordinator(self, ref: str, reference: dict[str, Any]) -> Any:
        """An evaluation id, else a job id (its newest COMPLETED evaluation of each spec)."""
        from scaimind_nb import NotFoundError

        session = self.session
        try:
            evaluation = session.client.get(ref)
            entry = {"evaluation_id": ref}
            reference.update(
                kind="evaluation",
                evaluation_id=ref,
                model_uri=evaluation.model_uri,
                label=f"evaluation {ref} (model {evaluation.model_uri})",
            )
        except NotFoundError:
            try:
                session.client.get_job(ref)
            except NotFoundError:
                raise LookupError(
                    f"--scaimind-compare={ref} names no history entry in {self.history.path}, "
                    f"and {session.host} knows no evaluation or job {ref}"
                ) from None
            entry = {"job_id": ref}
            reference.update(
                kind="job",
                job_id=ref,
                label=f"job {ref} (its newest COMPLETED evaluation of each spec)",
            )
        return lambda record: self._then_live(entry, record)

    def _then_live(self, entry: dict[str, Any], record: GateRecord) -> Then:
        """The reference value from a live evaluation or job (a job's evaluation of the same
        batch of specs this session planned, else of the spec alone)."""
        from scaimind_nb import Benchmark, ScaimindError

        spec = Benchmark.coerce(record.spec)
        try:
            evaluation = self._live(entry, spec)
            result = evaluation.result(spec.name)
            metric = result.metric_name(record.metric)
            value = result.value(metric)
        except (ScaimindError, KeyError, LookupError) as exc:
            return Then(None, note=str(exc))
        items, _why = self.session.result_item_outcomes(
            evaluation.evaluation_id, spec.name, metric, result
        )
        return Then(
            value,
            result.num_samples,
            result.stderr_of(metric),
            result.is_proportion(metric),
            evaluation.evaluation_id,
            items=items,
        )

    def _live(self, entry: dict[str, Any], spec: Benchmark) -> Evaluation:
        """A job's evaluation holding `spec`: evaluations match whole batches, so try the batch
        this session's gates put `spec` in first (the same suite batches the same way)."""
        from pytest_scaimind._evaluations import plan_batches
        from scaimind_nb import Benchmark

        session = self.session
        if "job_id" not in entry:
            return session.live_evaluation(entry, [spec])
        if self._batches is None:
            self._batches = plan_batches([Benchmark.coerce(r.spec) for r in session.records])
        batch = next((b for b in self._batches if spec in b), [spec])
        try:
            return session.live_evaluation(entry, batch)
        except LookupError:
            if len(batch) == 1:
                raise
            return session.live_evaluation(entry, [spec])

    def _then_baseline(self, record: GateRecord) -> Then | None:
        from pytest_scaimind._baseline import is_live, is_proportion, stored_stderr, stored_value

        baseline = self.session.baseline
        entry = baseline.entry(record.benchmark)
        if entry is None:
            return None
        if is_live(entry):
            return self._then_live(entry, record)
        metric = record.metric or ""
        value = stored_value(entry, metric)
        if value is None:
            return Then(None, note=f"no {metric} in the baseline entry")
        return Then(
            value,
            entry.get("num_samples"),
            stored_stderr(entry, metric),
            is_proportion(entry, metric),
            (entry.get("source") or {}).get("evaluation_id"),
            items=baseline.items(record.benchmark, metric)[0],
        )

    def _record_items(self, record: GateRecord) -> ItemOutcomes | None:
        """This session's per-item outcomes of a gate's metric, for pairing (None: none that fit)."""
        return self._items(record, record.metric, record.score)

    def _items(
        self, record: GateRecord, metric: str | None, value: float | None
    ) -> ItemOutcomes | None:
        """The per-item outcomes of `metric` in a record's evaluation, where they measure it."""
        if record.evaluation_id is None or metric is None:
            return None
        name = str(record.spec.get("name", record.benchmark))
        items, _why = self.session.item_outcomes(
            record.evaluation_id, name, metric, record.primary_metric, value
        )
        return items


def _append(path: str, run: _report.Run) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(_report.markdown(run))


def without_credentials(url: str) -> str:
    """`url` without a `user:password@` part, a query or a fragment: reports travel."""
    parts = urllib.parse.urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
