"""Obtaining results spec by spec: precheck, reuse by content, submit only what is missing, wait.

For the specs a session needs, `Evaluations.plan` asks the coordinator's precheck for each
spec's data digest (or its first problem) and the model's digest, then finds, per spec, an
evaluation that already holds it with the same digests (pytest's cache first, then one bounded
newest-first listing scan), and submits the specs nothing serves together as one evaluation
(two specs sharing a name go to separate ones). A spec with a problem is never submitted: its
gates ERROR in setup. Against a coordinator without the precheck route, reuse falls back to
the URI key (job, model, checkpoint, spec) and is marked "not content-verified".
See docs/reuse.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_scaimind._gates import label
from pytest_scaimind._waiting import ProgressLines, timed_out
from scaimind_nb import (
    APIConnectionError,
    APIStatusError,
    Benchmark,
    Evaluation,
    NotFoundError,
    PrecheckNotAvailableError,
    ProtocolError,
    RateLimitError,
    ScaimindError,
    ScaimindValueError,
    ServerError,
    Status,
    WaitTimeoutError,
)

if TYPE_CHECKING:
    import pytest

    from pytest_scaimind._options import Options
    from scaimind_nb import Client

KEY_VERSION = 2
"""Version of the reuse keys (pytest cache entries `scaimind/reuse/v2/…`); bump it when what a
key covers changes, so older entries are never read as newer ones."""
LOOKUP_STATUSES = (
    Status.COMPLETED,
    Status.RUNNING,
    Status.QUEUED,
    Status.PENDING,
    Status.FAILED,
    Status.CANCELLED,
)
"""Evaluations the reuse lookup looks at; FAILED and CANCELLED ones serve only the specs they
hold a result for (see `refusal`)."""
MAX_LOOKUP_PAGES = 25
MAX_POLL_INTERVAL = 20.0  # the client's default cap, lowered to half the progress interval


class NoResult(Exception):
    """A spec cannot get a result: its gates ERROR with this message.

    `infra` when the infrastructure is the cause (the coordinator unreachable or failing, an
    evaluation FAILED, CANCELLED or timed out), which a retry may fix; a precheck problem (an
    unknown name, bad data, an unresolvable model), a refused submit or a reuse=only miss are not.
    """

    def __init__(self, message: str, *, infra: bool) -> None:
        super().__init__(message)
        self.infra = infra


def is_infra(exc: ScaimindError) -> bool:
    """Whether a client error is the infrastructure's (a retry may fix it), not the request's."""
    return isinstance(exc, APIConnectionError | ServerError | RateLimitError | ProtocolError)


@dataclass
class Serving:
    """How one spec gets its result: the evaluation, whether reused (and content-verified),
    the digests it is matched on; or the problem that stops it before any submission."""

    spec: Benchmark
    """The spec as evaluated (after pytest_scaimind_modify_request)."""
    evaluation_id: str | None = None
    reused: bool = False
    verified: bool | None = None
    """For a reused result: matched on content digests (True) or on URIs only (False)."""
    model_digest: str | None = None
    data_digest: str | None = None
    problem: str | None = None
    infra: bool = False
    """Whether the problem is the infrastructure's (see NoResult)."""

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "spec": self.spec.to_request()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Serving:
        return cls(**{**data, "spec": Benchmark.coerce(data["spec"])})


@dataclass
class Waited:
    """One evaluation the session uses: its latest snapshot, and how waiting for it ended."""

    evaluation_id: str
    evaluation: Evaluation | None = None
    error: str | None = None
    finished: bool = False


def plan_batches(specs: list[Benchmark]) -> list[list[Benchmark]]:
    """Distinct specs into as few evaluations as possible: two specs sharing a name go to different ones."""
    batches: list[list[Benchmark]] = []
    for spec in dict.fromkeys(specs):
        target = next((b for b in batches if all(s.name != spec.name for s in b)), None)
        if target is None:
            batches.append([spec])
        else:
            target.append(spec)
    return batches


def _digest(payload: list[Any]) -> str:
    return hashlib.sha256(json.dumps(payload, default=list).encode()).hexdigest()[:24]


def request_key(host: str, request: dict[str, Any]) -> str:
    """Content address of a request: host, job, model, checkpoint and specs; never timeouts or polling."""
    specs = sorted(json.dumps(Benchmark.coerce(b).key()) for b in request["benchmarks"])
    return _digest(
        [
            KEY_VERSION,
            host,
            request["job_id"],
            request["model_uri"],
            request.get("checkpoint_id") or "",
            specs,
        ]
    )


def reuse_key(host: str, job_id: str, model_uri: str, checkpoint_id: str, serving: Serving) -> str:
    """The reuse key of one spec: where, which job, model and checkpoint, the spec, and the
    digests of the model and data it is evaluated on (None for both without a precheck)."""
    return _digest(
        [
            KEY_VERSION,
            host,
            job_id,
            model_uri,
            checkpoint_id,
            serving.spec.key(),
            serving.model_digest,
            serving.data_digest,
        ]
    )


def result_of(evaluation: Evaluation, spec: Benchmark) -> Any:
    """The evaluation's result for `spec` (matched by name, as results are), or None."""
    low = spec.name.lower()
    return next((r for r in evaluation.results if r.benchmark.lower() == low), None)


def refusal(evaluation: Evaluation, serving: Serving) -> str | None:
    """Why `evaluation` cannot serve `serving.spec`, or None when it can.

    It must hold the identical spec and no other of the same name (results are named by
    benchmark); a FAILED or CANCELLED one only with a result for it, and none whose result for
    it failed. Where the precheck gave digests, the evaluation's
    recorded digests of the model and of the spec's data must be the same.
    """
    spec = serving.spec
    index = next((i for i, b in enumerate(evaluation.benchmarks) if b.key() == spec.key()), None)
    if index is None:
        return "it does not hold the spec"
    if sum(b.name.lower() == spec.name.lower() for b in evaluation.benchmarks) > 1:
        return f"it holds several specs named {spec.name!r}, whose results cannot be told apart"
    result = result_of(evaluation, spec)
    if result is not None and result.failed:
        return f"the spec failed in it ({result.error})"
    if result is None and evaluation.status in (Status.FAILED, Status.CANCELLED):
        return f"it ended {evaluation.status.value} without a result for the spec"
    if evaluation.status is Status.UNKNOWN:
        return "its status is unknown"
    if serving.model_digest is not None and evaluation.model_digest != serving.model_digest:
        return (
            f"its model digest {evaluation.model_digest or '(not recorded)'} is not the "
            f"model's {serving.model_digest}"
        )
    if serving.data_digest is not None:
        info = evaluation.data[index] if index < len(evaluation.data) else None
        recorded = info.digest if info is not None else None
        if recorded != serving.data_digest:
            return (
                f"its data digest {recorded or '(not recorded)'} is not the data's "
                f"{serving.data_digest}"
            )
    return None


class Evaluations:
    """Plans, obtains and waits for the session's results, spec by spec, sharing the plan
    across xdist workers; one deadline (--scaimind-timeout) bounds all the session's waiting."""

    def __init__(
        self,
        config: pytest.Config,
        options: Options,
        client: Client,
        host: str,
        key_host: str,
        model_uri: str,
        write: Callable[[str], None],
    ) -> None:
        self.config = config
        self.options = options
        self.client = client
        self.host = host
        """The coordinator as messages name it."""
        self.key_host = key_host
        """The coordinator as reuse keys name it (stable across runs of an embedded one)."""
        self.model_uri = model_uri
        self.write = write
        self.servings: dict[Any, Serving] = {}
        """By the gate's spec key: how that spec is served."""
        self.evaluations: dict[str, Waited] = {}
        self.waited = 0.0
        """Seconds the session has spent waiting so far (bounded by --scaimind-timeout)."""
        self.progress: ProgressLines | None = None
        self.clock: Callable[[], float] = time.monotonic
        self._names: list[str] | None = None
        self._names_read = False

    # -- planning --------------------------------------------------------------------------

    def plan(self, specs: list[Benchmark]) -> None:
        """Decide, once per spec, how each of `specs` gets its result (submitting what must be)."""
        todo = [s for s in dict.fromkeys(specs) if s.key() not in self.servings]
        if not todo:
            return
        request: dict[str, Any] = {
            "job_id": self.options.job,
            "model_uri": self.model_uri,
            "checkpoint_id": self.options.checkpoint,
            "benchmarks": [s.to_request() for s in todo],
        }
        claim = request_key(self.key_host, request)
        try:
            self.config.hook.pytest_scaimind_modify_request(config=self.config, request=request)
            shared = self._shared_dir()
            if shared is None:
                servings = self._obtain(todo, request)
            else:
                servings = self._claimed(shared, claim, lambda: self._obtain(todo, request))
        except NoResult as exc:
            servings = [Serving(s, problem=str(exc), infra=exc.infra) for s in todo]
        except ScaimindError as exc:
            servings = [Serving(s, problem=self._describe(exc), infra=is_infra(exc)) for s in todo]
        for spec, serving in zip(todo, servings, strict=True):
            self.servings[spec.key()] = serving
            if serving.evaluation_id is not None:
                self.evaluations.setdefault(serving.evaluation_id, Waited(serving.evaluation_id))

    def _obtain(self, todo: list[Benchmark], request: dict[str, Any]) -> list[Serving]:
        """Precheck, reuse, submit: one Serving per spec of `todo` (in order)."""
        evaluated = [Benchmark.coerce(b) for b in request["benchmarks"]]
        by_gate = [evaluated[i] if i < len(evaluated) else s for i, s in enumerate(todo)]
        wanted = list(dict.fromkeys(evaluated + by_gate))
        servings = self._precheck(request["model_uri"], wanted)
        ready = [servings[s] for s in wanted if servings[s].problem is None]
        if self.options.reuse != "never":
            self._reuse(request, ready)
        missing = [s for s in ready if s.evaluation_id is None]
        if missing and self.options.reuse == "only":
            for serving in missing:
                serving.problem = (
                    f"--scaimind-reuse=only: no evaluation of job {request['job_id']}, model "
                    f"{request['model_uri']}, checkpoint {request['checkpoint_id'] or '(final)'} "
                    f"holds {label(serving.spec)} with the same content within "
                    f"{self.options.reuse_window:g}h on {self.host}; use --scaimind-reuse=auto "
                    "to submit it"
                )
        else:
            self._submit(request, missing)
        return [servings[s] for s in by_gate]

    def _precheck(self, model_uri: str, specs: list[Benchmark]) -> dict[Benchmark, Serving]:
        """Each spec's digests, or its problem; without a precheck route, only known names."""
        try:
            answer = self.client.precheck(model_uri, specs)
        except PrecheckNotAvailableError:
            return {s: Serving(s, problem=self._unknown_name(s)) for s in specs}
        servings = {}
        for check in answer.benchmarks:
            spec = check.benchmark
            problem = answer.model_problem or check.problem  # a model problem stops every spec
            servings[spec] = Serving(
                spec,
                model_digest=answer.model_digest,
                data_digest=check.data.digest if check.data is not None else None,
                problem=f"{problem} (precheck of {label(spec)}; not submitted)"
                if problem
                else None,
            )
        return servings

    def _unknown_name(self, spec: Benchmark) -> str | None:
        """Without a precheck: a name the coordinator's benchmarks route does not list."""
        if not self._names_read:
            try:
                self._names = self.client.list_benchmarks()
            except NotFoundError:
                self._names = None
            self._names_read = True
        names = self._names
        if not names or any(
            spec.name == n or (n.endswith("*") and spec.name.startswith(n[:-1])) for n in names
        ):
            return None
        return (
            f"unknown benchmark {spec.name!r}; {self.host} knows: {', '.join(names)} "
            f"(checked against its benchmarks route; {label(spec)} not submitted)"
        )

    def _reuse(self, request: dict[str, Any], servings: list[Serving]) -> None:
        """Serve what can be served by existing evaluations: cached ids, then one listing scan."""
        for serving in servings:
            cached = self._cached(request, serving)
            if cached is not None:
                self._serve(request, serving, cached)
        missing = {s.spec: s for s in servings if s.evaluation_id is None}
        if not missing:
            return
        found = self.client.find_for_each(
            request["job_id"],
            request["model_uri"],
            list(missing),
            request["checkpoint_id"],
            since=datetime.now(UTC) - timedelta(hours=self.options.reuse_window),
            statuses=LOOKUP_STATUSES,
            max_pages=MAX_LOOKUP_PAGES,
            accept=lambda ev, spec: refusal(ev, missing[spec]) is None,
        )
        for spec, evaluation in found.items():
            self._serve(request, missing[spec], evaluation)

    def _cached(self, request: dict[str, Any], serving: Serving) -> Evaluation | None:
        """The evaluation pytest's cache names for the spec's key, if it can still serve it."""
        cache = getattr(self.config, "cache", None)
        entry = cache.get(self._cache_path(request, serving), None) if cache is not None else None
        evaluation_id = entry.get("evaluation_id") if isinstance(entry, dict) else None
        if not isinstance(evaluation_id, str):
            return None
        known = self.evaluations.get(evaluation_id)
        evaluation = known.evaluation if known is not None else None
        if evaluation is None:
            try:
                evaluation = self.client.get(evaluation_id)
            except NotFoundError:  # e.g. an id from another coordinator
                return None
        same_run = (
            evaluation.job_id == request["job_id"]
            and evaluation.model_uri == request["model_uri"]
            and (evaluation.checkpoint_id or "") == request["checkpoint_id"]
        )
        return evaluation if same_run and refusal(evaluation, serving) is None else None

    def _serve(self, request: dict[str, Any], serving: Serving, evaluation: Evaluation) -> None:
        serving.evaluation_id = evaluation.evaluation_id
        serving.reused = True
        serving.verified = serving.model_digest is not None and serving.data_digest is not None
        self._known(evaluation)
        self._remember(request, serving)

    def _submit(self, request: dict[str, Any], servings: list[Serving]) -> None:
        """Submit the specs nothing serves, together (a name once per evaluation)."""
        by_spec = {s.spec: s for s in servings}
        for batch in plan_batches(list(by_spec)):
            try:
                evaluation = self.client.submit(
                    request["job_id"], request["model_uri"], batch, request["checkpoint_id"]
                )
            except ScaimindError as exc:
                for spec in batch:
                    by_spec[spec].problem = self._describe(exc)
                    by_spec[spec].infra = is_infra(exc)
                continue
            self._known(evaluation)
            recorded = dict(zip(evaluation.benchmarks, evaluation.data, strict=False))
            for spec in batch:
                serving = by_spec[spec]
                serving.evaluation_id = evaluation.evaluation_id
                info = recorded.get(spec)
                serving.model_digest = evaluation.model_digest or serving.model_digest
                serving.data_digest = info.digest if info is not None else serving.data_digest
                self._remember(request, serving)

    def _known(self, evaluation: Evaluation) -> None:
        """Keep a snapshot; a terminal one needs no waiting at all."""
        waited = self.evaluations.setdefault(
            evaluation.evaluation_id, Waited(evaluation.evaluation_id)
        )
        waited.evaluation = evaluation

    def _cache_path(self, request: dict[str, Any], serving: Serving) -> str:
        key = reuse_key(
            self.key_host,
            request["job_id"],
            request["model_uri"],
            request["checkpoint_id"],
            serving,
        )
        return f"scaimind/reuse/v{KEY_VERSION}/{key}"

    def _remember(self, request: dict[str, Any], serving: Serving) -> None:
        """Keep the spec's evaluation id in pytest's cache (when on) so a rerun resumes it."""
        cache = getattr(self.config, "cache", None)
        if cache is not None:
            cache.set(
                self._cache_path(request, serving),
                {
                    "evaluation_id": serving.evaluation_id,
                    "spec": label(serving.spec),
                    "stored_at": datetime.now(UTC).isoformat(timespec="seconds"),
                },
            )

    # -- results ---------------------------------------------------------------------------

    def serving(self, spec: Benchmark) -> Serving:
        """How `spec` is served (planning it now if it was not collected)."""
        self.plan([spec])
        return self.servings[spec.key()]

    def result(self, spec: Benchmark) -> tuple[Serving, Evaluation]:
        """The spec's serving and the finished evaluation holding its result; NoResult if none."""
        serving = self.serving(spec)
        if serving.problem is not None:
            raise NoResult(serving.problem, infra=serving.infra)
        assert serving.evaluation_id is not None
        evaluation = self._finish(self.evaluations[serving.evaluation_id])
        result = result_of(evaluation, serving.spec)
        where = f"evaluation {evaluation.evaluation_id}"
        if result is not None and not result.failed:
            return serving, evaluation
        if result is not None:
            raise NoResult(f"{label(serving.spec)} failed in {where}: {result.error}", infra=True)
        if evaluation.status is not Status.COMPLETED:
            reason = f": {evaluation.error}" if evaluation.error else ""
            raise NoResult(f"{where} ended {evaluation.status.value}{reason}", infra=True)
        have = ", ".join(r.benchmark for r in evaluation.results) or "none"
        raise NoResult(
            f"{where} completed without a result for {serving.spec.name!r} (results: {have})",
            infra=True,
        )

    def _finish(self, waited: Waited) -> Evaluation:
        """Wait (within the session's --scaimind-timeout) until the evaluation ends; NoResult if
        it can't (the infrastructure's)."""
        if not waited.finished:
            if waited.evaluation is None or not waited.evaluation.is_terminal:
                self._wait(waited)
            waited.finished = True
            if waited.evaluation is not None and waited.error is None:
                self.config.hook.pytest_scaimind_evaluation_done(
                    config=self.config, evaluation=waited.evaluation
                )
        if waited.error is not None:
            raise NoResult(waited.error, infra=True)
        assert waited.evaluation is not None
        return waited.evaluation

    def _wait(self, waited: Waited) -> None:
        """Poll one evaluation with what is left of the session's --scaimind-timeout."""
        poll_cap = min(MAX_POLL_INTERVAL, self.options.progress_interval / 2)
        if self.progress is None:
            self.progress = ProgressLines(self.write, self.options.progress_interval, poll_cap)
        progress = self.progress
        started = self.clock()

        def on_poll(event: Any) -> None:
            if event.evaluation is not None:
                waited.evaluation = event.evaluation
            progress(event)

        remaining = self.options.timeout - self.waited
        try:
            if remaining <= 0:  # the session's wait is used up: one look, no waiting
                waited.evaluation = self.client.get(waited.evaluation_id)
                if not waited.evaluation.is_terminal:
                    raise WaitTimeoutError(waited.evaluation_id, waited.evaluation, 0.0)
                return
            waited.evaluation = self.client.wait(
                waited.evaluation_id,
                timeout=remaining,
                poll_interval=self.options.poll_interval,
                max_poll_interval=poll_cap,
                on_poll=on_poll,
            )
        except WaitTimeoutError as exc:
            waited.error = timed_out(exc, self.options.timeout)
        except ScaimindError as exc:
            waited.error = self._describe(exc, waited.evaluation_id)
        finally:
            self.waited += self.clock() - started

    def snapshot(self, serving: Serving | None) -> Evaluation | None:
        """The latest snapshot of the evaluation serving a spec (None when there is none)."""
        if serving is None or serving.evaluation_id is None:
            return None
        waited = self.evaluations.get(serving.evaluation_id)
        return waited.evaluation if waited is not None else None

    def left_running(self) -> list[Evaluation]:
        """The evaluations last seen not finished (for the interrupt note)."""
        return [
            w.evaluation
            for w in self.evaluations.values()
            if w.evaluation is not None and not w.evaluation.is_terminal
        ]

    # -- xdist -----------------------------------------------------------------------------

    def _shared_dir(self) -> Path | None:
        """Under xdist, a directory all workers of this run share; None otherwise."""
        run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
        if not run or not hasattr(self.config, "workerinput"):
            return None
        path = handoff_dir(run)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _claimed(
        self, shared: Path, key: str, obtain: Callable[[], list[Serving]]
    ) -> list[Serving]:
        """The first worker to claim the plan obtains it; the others read its answer."""
        answer = shared / f"{key}.json"
        try:
            os.close(os.open(shared / f"{key}.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            deadline = time.monotonic() + self.options.timeout
            while not answer.exists():
                if time.monotonic() > deadline:
                    raise NoResult(
                        "another xdist worker did not finish submitting within "
                        f"--scaimind-timeout={self.options.timeout:g}s",
                        infra=True,
                    ) from None
                time.sleep(0.05)
            data = json.loads(answer.read_text())
            if "error" in data:
                raise NoResult(data["error"], infra=data["infra"]) from None
            return [Serving.from_json(s) for s in data["servings"]]
        try:
            servings = obtain()
        except (NoResult, ScaimindError) as exc:
            failure = (
                exc
                if isinstance(exc, NoResult)
                else NoResult(self._describe(exc), infra=is_infra(exc))
            )
            _write_atomic(answer, {"error": str(failure), "infra": failure.infra})
            raise failure from None
        _write_atomic(answer, {"servings": [s.to_json() for s in servings]})
        return servings

    def _describe(self, exc: ScaimindError, evaluation_id: str | None = None) -> str:
        """One line for an infrastructure error: what failed, where, and the evaluation id if known."""
        where = f" (evaluation {evaluation_id})" if evaluation_id else ""
        if isinstance(exc, APIConnectionError):
            return f"cannot reach the coordinator at {self.host}{where}: {exc}"
        if isinstance(exc, ScaimindValueError):
            return f"invalid evaluation request (check pytest_scaimind_modify_request hooks): {exc}"
        if isinstance(exc, APIStatusError):  # the server's reason first: CI summaries cut lines
            via = f"{exc.method} {exc.url}" if exc.method and exc.url else self.host
            return f"HTTP {exc.status_code}: {exc.message} (coordinator {via}{where})"
        return f"coordinator error at {self.host}{where}: {exc}"


def handoff_dir(run: str) -> Path:
    """Where the xdist workers of test run `run` share their claims (the controller removes it)."""
    return Path(tempfile.gettempdir()) / "pytest-scaimind" / run


def _write_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)
