"""The `%scaimind` / `%%scaimind` magics, registered by `%load_ext scaimind_nb`.

Every failure a magic meets is a one-line `UsageError` that says what to fix; `-h` after a
command prints that command's help.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, NoReturn

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import MagicArgumentParser
from traitlets import CaselessStrEnum, Float, Integer, TraitError, Unicode, observe, validate

from ._contract import SUBMIT_FIELDS, Status
from ._display import MODES, doctor_report
from ._errors import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    ProtocolError,
    ScaimindError,
    ServerError,
    WaitTimeoutError,
)
from ._evaluate import (
    EvaluationRun,
    check_timeout,
    default_client,
    evaluate,
    settings,
    wait_bound,
)

HOW_TO_CONNECT = "host: SCAIGRID_HOST or %config ScaimindMagics.host; key: SCAIGRID_API_KEY"


class _HelpShown(Exception):
    """`-h` printed a command's help; the magic returns nothing."""


class _Parser(MagicArgumentParser):
    """argparse for magics: errors are UsageErrors, `-h` prints help instead of exiting.

    Plain argparse formatting (not IPython's reST one): help reads as a terminal's would.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.HelpFormatter)
        super().__init__(*args, **kwargs)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if status:
            raise UsageError((message or "invalid arguments").strip())
        raise _HelpShown


def _build_parser() -> _Parser:
    parser = _Parser(
        prog="%scaimind",
        description=f"Submit, watch and compare ScaiMind evaluations ({HOW_TO_CONNECT}).",
    )
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )

    def command(name: str, summary: str) -> _Parser:
        return sub.add_parser(name, help=summary, description=summary, add_help=True)

    ev = command("evaluate", "submit an evaluation and watch it")
    ev.add_argument("job_id", metavar="JOB_ID", help="the training job the model comes from")
    ev.add_argument("--model", required=True, dest="model_uri", metavar="URI", help="model URI")
    ev.add_argument(
        "--checkpoint", default="", dest="checkpoint_id", metavar="ID", help="checkpoint id"
    )
    ev.add_argument(
        "benchmarks", nargs="+", metavar="BENCHMARK", help="name, name:num_samples or name@dataset"
    )
    ev.add_argument("--no-wait", action="store_true", help="return at once; the display stays live")
    ev.add_argument("--timeout", type=float, default=None, metavar="S", help="wait at most S s")
    get = command("get", "fetch one evaluation")
    get.add_argument("evaluation_id", metavar="ID")
    wait = command("wait", "watch evaluations until they end")
    wait.add_argument("evaluation_ids", nargs="+", metavar="ID")
    wait.add_argument("--timeout", type=float, default=None, metavar="S", help="wait at most S s")
    ls = command("list", "past evaluations as a DataFrame (model, checkpoint, status, scores)")
    ls.add_argument("--page-size", type=int, default=20, metavar="N")
    ls.add_argument("--limit", type=int, default=None, metavar="N", help="stop after N")
    cmp = command("compare", "scores with n and intervals, and the difference to a baseline")
    cmp.add_argument("evaluation_ids", nargs="+", metavar="ID")
    cmp.add_argument("--metric", default=None, metavar="M", help="default: each primary metric")
    cmp.add_argument(
        "--baseline", default=None, metavar="ID", help="the evaluation to compare to (the first)"
    )
    cmp.add_argument("--confidence", type=float, default=0.95, metavar="C")
    diff = command("diff", "the items whose outcome changed between two evaluations")
    diff.add_argument("evaluation_ids", nargs=2, metavar="ID")
    diff.add_argument("--benchmark", default=None, metavar="NAME")
    smp = command("samples", "the per-item results of an evaluation")
    smp.add_argument("evaluation_id", metavar="ID")
    smp.add_argument("--benchmark", default=None, metavar="NAME")
    command("doctor", "explain the display mode and the environment")
    submit = command(
        "submit", "cell form: %%scaimind submit [VAR], the REST body as JSON or YAML below"
    )
    submit.add_argument("var", nargs="?", default=None, metavar="VAR", help="variable to fill")
    submit.add_argument("--no-wait", action="store_true", help="store the run handle at once")
    submit.add_argument("--timeout", type=float, default=None, metavar="S", help="wait at most S s")
    return parser


PARSER = _build_parser()


def _summary(parser: _Parser) -> str:
    """`%scaimind?`: one usage line and one summary line per command."""
    lines = [parser.description or "", ""]
    action = next(a for a in parser._actions if a.dest == "command")
    helps = {c.dest: c.help for c in action._choices_actions}  # type: ignore[attr-defined]
    for name, sub in action.choices.items():  # type: ignore[union-attr]
        usage = " ".join(sub.format_usage().split()).removeprefix("usage: ")
        lines.append(f"  {'%' if name == 'submit' else ''}{usage}")
        lines.append(f"      {helps.get(name, '')}")
    lines += [
        "",
        "BENCHMARK: name, name:num_samples (mmlu:100) or name@dataset (custom-qa@scaidrive://…).",
        "%scaimind COMMAND -h shows one command's options; bad input is a one-line UsageError.",
        "Settings: %config ScaimindMagics.host / poll_interval / progress / display_limit.",
    ]
    return "\n".join(lines)


def parse_benchmark(spec: str) -> dict[str, Any]:
    """`name`, `name:num_samples` or `name@dataset[:num_samples]` as a REST-shaped dict."""
    name, _, dataset = spec.partition("@")
    head, sep, tail = (dataset or name).rpartition(":")
    num_samples = None
    if sep and tail.isdigit():
        num_samples = int(tail)
        if dataset:
            dataset = head
        else:
            name = head
    elif sep and not dataset:
        raise UsageError(
            f"benchmark {spec!r}: write name, name:num_samples (e.g. mmlu:100) or name@dataset"
        )
    body: dict[str, Any] = {"name": name}
    if dataset:
        body["dataset"] = dataset
    if num_samples is not None:
        body["num_samples"] = num_samples
    return body


def parse_body(cell: str) -> dict[str, Any]:
    """The REST request body of `%%scaimind submit`, as JSON or YAML, checked before sending."""
    text = cell.strip()
    if not text:
        raise UsageError("%%scaimind submit needs a body: the REST request as JSON or YAML")
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        import yaml

        try:
            body = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0]
            raise UsageError(f"the cell body is neither JSON nor YAML: {first}") from None
    if isinstance(body, dict) and set(body) == {"data"}:
        body = body["data"]
    if not isinstance(body, dict):
        raise UsageError("the cell body must be an object with job_id, model_uri and benchmarks")
    unknown = sorted(set(body) - set(SUBMIT_FIELDS))
    if unknown:
        raise UsageError(
            f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(SUBMIT_FIELDS)}"
        )
    missing = [k for k in ("job_id", "model_uri", "benchmarks") if not body.get(k)]
    if missing:
        raise UsageError(f"the body is missing {', '.join(missing)}")
    return body


def one_line(exc: BaseException) -> str:
    """What went wrong and how to fix it, in one line, for any error a magic meets."""
    if isinstance(exc, WaitTimeoutError):
        state = exc.last.status.value if exc.last is not None else "unknown"
        text = (
            f"evaluation {exc.evaluation_id} is not finished after {exc.elapsed:.1f} s "
            f"(status {state}); it keeps running: %scaimind wait {exc.evaluation_id}"
        )
        bound = getattr(exc, "bound_to", None)
        return text + (f"; `{bound}` holds its handle" if bound else "")
    if isinstance(exc, AuthenticationError):
        text = (
            f"the coordinator refused the API key (HTTP 401): set SCAIGRID_API_KEY ({exc.message})"
        )
    elif isinstance(exc, PermissionDeniedError):
        text = f"this API key may not do that (HTTP 403): {exc.message}"
    elif isinstance(exc, NotFoundError):
        text = f"{exc.message} (HTTP 404); `%scaimind list` shows recent evaluations"
    elif isinstance(exc, ServerError):
        text = f"the coordinator failed (HTTP {exc.status_code}): {exc.message}; try again"
    elif isinstance(exc, APIStatusError):
        text = f"the coordinator refused it (HTTP {exc.status_code}): {exc.message}"
    elif isinstance(exc, APIConnectionError):
        text = f"cannot reach the coordinator: {exc}; check {HOW_TO_CONNECT}"
    elif isinstance(exc, ProtocolError):
        text = f"the coordinator's answer was not understood: {exc}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


@magics_class
class ScaimindMagics(Magics):
    """`%scaimind` magics; settings via `%config ScaimindMagics.<name> = value`."""

    host = Unicode(
        None, allow_none=True, help="Coordinator URL; default SCAIGRID_HOST. The key is env-only."
    ).tag(config=True)
    poll_interval = Float(
        1.0, help="Seconds before the first re-poll of a running evaluation."
    ).tag(config=True)
    max_poll_interval = Float(
        2.0, help="The poll interval grows by half each poll up to this many seconds."
    ).tag(config=True)
    progress = CaselessStrEnum(
        MODES, default_value="auto", help="Progress display: auto, widget, html, text or off."
    ).tag(config=True)
    display_limit = Integer(10, help="Rows shown of a table (0 = all); data is never cut.").tag(
        config=True
    )

    _SETTINGS = ("host", "poll_interval", "max_poll_interval", "progress", "display_limit")

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        for name in self._SETTINGS:
            setattr(settings, name, getattr(self, name))

    @validate("poll_interval", "max_poll_interval")
    def _check_interval(self, proposal: Any) -> float:
        if proposal.value <= 0:
            raise TraitError(f"{proposal.trait.name} must be > 0 seconds, got {proposal.value}")
        return float(proposal.value)

    @observe(*_SETTINGS)
    def _sync(self, change: Any) -> None:
        setattr(settings, change.name, change.new)

    @line_cell_magic
    def scaimind(self, line: str, cell: str | None = None) -> Any:
        try:
            args = PARSER.parse_argstring(line)
        except _HelpShown:
            return None
        if (cell is None) == (args.command == "submit"):
            form = "%%scaimind submit [VAR]" if cell is None else "%scaimind COMMAND"
            raise UsageError(f"use {form}: only submit is a cell magic, the rest are line magics")
        try:
            return getattr(self, f"_cmd_{args.command}")(args, cell)
        except (ScaimindError, ValueError) as exc:
            raise UsageError(one_line(exc)) from None

    # ------------------------------------------------------------------ subcommands

    def _cmd_evaluate(self, args: Any, cell: str | None) -> EvaluationRun:
        check_timeout(args.timeout)
        run = evaluate(
            args.job_id,
            args.model_uri,
            [parse_benchmark(spec) for spec in args.benchmarks],
            checkpoint_id=args.checkpoint_id,
            wait=False,
        )
        if not args.no_wait:
            wait_bound(run, args.timeout)
        return run

    def _cmd_get(self, args: Any, cell: str | None) -> Any:
        return default_client().get(args.evaluation_id)

    def _cmd_wait(self, args: Any, cell: str | None) -> EvaluationRun | list[EvaluationRun]:
        check_timeout(args.timeout)
        client = default_client()
        runs = [EvaluationRun.follow(eid, client=client) for eid in args.evaluation_ids]
        result = runs[0] if len(runs) == 1 else runs
        for run in runs:
            wait_bound(run, args.timeout, result)
        return result

    def _cmd_list(self, args: Any, cell: str | None) -> Any:
        from ._frames import evaluations_frame
        from ._views import limited

        if args.limit is not None and args.limit < 1:
            raise UsageError(f"--limit must be a positive number of evaluations, got {args.limit}")

        frame = evaluations_frame(default_client(), limit=args.limit, page_size=args.page_size)
        return limited(frame, settings.display_limit)

    def _cmd_compare(self, args: Any, cell: str | None) -> Any:
        from ._frames import compare
        from .stats import z_value

        z_value(args.confidence)
        client = default_client()
        evaluations = [client.get(eid) for eid in args.evaluation_ids]
        baseline = args.baseline
        if baseline is not None and baseline not in args.evaluation_ids:
            raise UsageError(f"--baseline {baseline} is not one of the compared ids")
        return compare(
            evaluations,
            metric=args.metric,
            baseline=baseline,
            confidence=args.confidence,
            client=client,
        )

    def _cmd_diff(self, args: Any, cell: str | None) -> Any:
        from ._frames import diff
        from ._views import limited

        a, b = args.evaluation_ids
        frame = diff(a, b, args.benchmark, client=default_client())
        return limited(frame, settings.display_limit)

    def _cmd_samples(self, args: Any, cell: str | None) -> Any:
        from ._frames import samples
        from ._views import limited

        frame = samples(args.evaluation_id, args.benchmark, client=default_client())
        return limited(frame, settings.display_limit)

    def _cmd_doctor(self, args: Any, cell: str | None) -> None:
        print(doctor_report(settings.progress))

    def _push(self, variables: dict[str, Any]) -> None:
        if self.shell is not None:
            self.shell.push(variables)

    def _cmd_submit(self, args: Any, cell: str | None) -> EvaluationRun | None:
        if args.var is not None and not args.var.isidentifier():
            raise UsageError(f"{args.var!r} is not a valid variable name")
        body = parse_body(cell or "")
        check_timeout(args.timeout)
        run = evaluate(
            str(body["job_id"]),
            str(body["model_uri"]),
            body["benchmarks"],
            checkpoint_id=str(body.get("checkpoint_id") or ""),
            wait=False,
        )
        if not args.no_wait:
            try:
                run.wait(args.timeout)
            except BaseException as exc:
                if args.var is not None:
                    self._push({args.var: run})
                    exc.bound_to = args.var  # type: ignore[attr-defined]
                raise
        if args.var is None:
            return run
        status = run.evaluation.status
        if args.no_wait or status is not Status.COMPLETED:
            self._push({args.var: run})
        else:
            self._push({args.var: run.to_frame()})
        if not args.no_wait and status is not Status.COMPLETED:
            reason = f": {run.evaluation.error}" if run.evaluation.error else ""
            print(
                f"evaluation {run.evaluation_id} ended {status.value}{reason}; "
                f"{args.var} holds the EvaluationRun to inspect",
                file=sys.stderr,
            )
        return None


ScaimindMagics.scaimind.__doc__ = _summary(PARSER)


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics and their `%config` settings (called by `%load_ext scaimind_nb`)."""
    # Magics.__init__ appends the instance to shell.configurables, which is what %config reads
    ipython.register_magics(ScaimindMagics(shell=ipython))


def unload_ipython_extension(ipython: Any) -> None:
    """Stop polling, close clients and drop the magics (called by `%unload_ext`/`%reload_ext`)."""
    from ._evaluate import close_clients
    from ._progress import stop_all

    stop_all()
    close_clients()
    ipython.configurables[:] = [
        c for c in ipython.configurables if not isinstance(c, ScaimindMagics)
    ]
    manager = ipython.magics_manager
    for kind in ("line", "cell"):
        manager.magics[kind].pop("scaimind", None)
    manager.registry.pop("ScaimindMagics", None)
