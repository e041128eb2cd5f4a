"""The `%scaimind` / `%%scaimind` magics, registered by `%load_ext scaimind_nb`."""

from __future__ import annotations

import json
import sys
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import MagicArgumentParser
from traitlets import CaselessStrEnum, Float, Integer, TraitError, Unicode, observe, validate

from ._contract import SUBMIT_FIELDS
from ._display import MODES, doctor_report
from ._errors import ScaimindValueError
from ._evaluate import EvaluationRun, coerce_benchmarks, default_client, evaluate, settings


def _build_parser() -> MagicArgumentParser:
    parser = MagicArgumentParser(
        prog="scaimind",
        description="Submit, watch and compare ScaiMind evaluations (host: SCAIGRID_HOST or "
        "%config ScaimindMagics.host; key: SCAIGRID_API_KEY).",
        epilog="Examples: %scaimind evaluate job_1 --model scaidrive://org/m mmlu:100 "
        "custom-qa@scaidrive://org/qa.jsonl | run = %scaimind evaluate … --no-wait | "
        "%scaimind wait ID | df = %scaimind list --limit 50 | %scaimind compare ID ID | "
        "%%scaimind submit df (cell: the REST body as JSON or YAML) | %scaimind doctor",
    )
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=MagicArgumentParser
    )
    ev = sub.add_parser("evaluate", help="submit an evaluation and watch it")
    ev.add_argument("job_id", help="the training job the model comes from")
    ev.add_argument("--model", required=True, dest="model_uri", help="model URI (scaidrive://…)")
    ev.add_argument("--checkpoint", default="", dest="checkpoint_id", help="checkpoint id")
    ev.add_argument(
        "benchmarks", nargs="+", metavar="BENCHMARK", help="name, name:num_samples or name@dataset"
    )
    ev.add_argument("--no-wait", action="store_true", help="return at once; the display stays live")
    ev.add_argument("--timeout", type=float, default=None, help="seconds to wait at most")
    get = sub.add_parser("get", help="fetch one evaluation")
    get.add_argument("evaluation_id")
    wait = sub.add_parser("wait", help="watch evaluations until they end")
    wait.add_argument("evaluation_ids", nargs="+", metavar="ID")
    wait.add_argument("--timeout", type=float, default=None, help="seconds to wait at most")
    ls = sub.add_parser("list", help="list past evaluations as a DataFrame")
    ls.add_argument("--page-size", type=int, default=20)
    ls.add_argument("--limit", type=int, default=None, help="stop after N evaluations")
    cmp = sub.add_parser("compare", help="benchmarks x evaluations table")
    cmp.add_argument("evaluation_ids", nargs="+", metavar="ID")
    cmp.add_argument("--metric", default=None, help="metric to compare (default: primary)")
    sub.add_parser("doctor", help="explain the display mode and the environment")
    submit = sub.add_parser(
        "submit", help="cell form: %%%%scaimind submit [VAR] with the REST body as JSON or YAML"
    )
    submit.add_argument("var", nargs="?", default=None, help="variable for the results frame")
    submit.add_argument("--no-wait", action="store_true", help="store the run handle at once")
    submit.add_argument("--timeout", type=float, default=None, help="seconds to wait at most")
    return parser


PARSER = _build_parser()


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


@magics_class
class ScaimindMagics(Magics):
    """`%scaimind` magics; settings via `%config ScaimindMagics.<name> = value`."""

    host = Unicode(
        None, allow_none=True, help="Coordinator URL; default SCAIGRID_HOST. The key is env-only."
    ).tag(config=True)
    poll_interval = Float(1.0, help="Seconds between status polls.").tag(config=True)
    progress = CaselessStrEnum(
        MODES, default_value="auto", help="Progress display: auto, widget, html, text or off."
    ).tag(config=True)
    display_limit = Integer(10, help="Rows shown of a table (0 = all); data is never cut.").tag(
        config=True
    )

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        for name in ("host", "poll_interval", "progress", "display_limit"):
            setattr(settings, name, getattr(self, name))

    @validate("poll_interval")
    def _check_interval(self, proposal: Any) -> float:
        if proposal.value <= 0:
            raise TraitError(f"poll_interval must be > 0 seconds, got {proposal.value}")
        return float(proposal.value)

    @observe("host", "poll_interval", "progress", "display_limit")
    def _sync(self, change: Any) -> None:
        setattr(settings, change.name, change.new)

    @line_cell_magic
    def scaimind(self, line: str, cell: str | None = None) -> Any:
        args = PARSER.parse_argstring(line)
        if (cell is None) == (args.command == "submit"):
            form = "%%scaimind submit [VAR]" if cell is None else "%scaimind COMMAND"
            raise UsageError(f"use {form}: only submit is a cell magic, the rest are line magics")
        try:
            return getattr(self, f"_cmd_{args.command}")(args, cell)
        except ScaimindValueError as exc:
            raise UsageError(str(exc)) from None

    # ------------------------------------------------------------------ subcommands

    def _cmd_evaluate(self, args: Any, cell: str | None) -> EvaluationRun:
        benchmarks = coerce_benchmarks([parse_benchmark(spec) for spec in args.benchmarks])
        return evaluate(
            args.job_id,
            args.model_uri,
            benchmarks,
            checkpoint_id=args.checkpoint_id,
            wait=not args.no_wait,
            timeout=args.timeout,
        )

    def _cmd_get(self, args: Any, cell: str | None) -> Any:
        return default_client().get(args.evaluation_id)

    def _cmd_wait(self, args: Any, cell: str | None) -> EvaluationRun | list[EvaluationRun]:
        client = default_client()
        runs = [EvaluationRun.follow(eid, client=client) for eid in args.evaluation_ids]
        for run in runs:
            run.wait(timeout=args.timeout)
        return runs[0] if len(runs) == 1 else runs

    def _cmd_list(self, args: Any, cell: str | None) -> Any:
        if args.page_size < 1 or (args.limit is not None and args.limit < 1):
            raise UsageError("--page-size and --limit must be positive integers")
        from ._frames import evaluations_frame
        from ._views import limited

        client = default_client()
        evaluations = list(client.iter_evaluations(page_size=args.page_size, limit=args.limit))
        return limited(evaluations_frame(evaluations), settings.display_limit)

    def _cmd_compare(self, args: Any, cell: str | None) -> Any:
        from ._frames import compare
        from ._views import limited

        client = default_client()
        evaluations = [client.get(eid) for eid in args.evaluation_ids]
        return limited(compare(evaluations, metric=args.metric), settings.display_limit)

    def _cmd_doctor(self, args: Any, cell: str | None) -> None:
        print(doctor_report(settings.progress))

    def _push(self, variables: dict[str, Any]) -> None:
        if self.shell is not None:
            self.shell.push(variables)

    def _cmd_submit(self, args: Any, cell: str | None) -> EvaluationRun | None:
        if args.var is not None and not args.var.isidentifier():
            raise UsageError(f"{args.var!r} is not a valid variable name")
        body = parse_body(cell or "")
        run = evaluate(
            str(body["job_id"]),
            str(body["model_uri"]),
            coerce_benchmarks(body["benchmarks"]),
            checkpoint_id=str(body.get("checkpoint_id") or ""),
            wait=False,
        )
        if not args.no_wait:
            try:
                run.wait(timeout=args.timeout)
            except BaseException:
                if args.var is not None:
                    self._push({args.var: run})
                raise
        if args.var is None:
            return run
        status = run.evaluation.status.value
        if args.no_wait:
            self._push({args.var: run})
        elif status == "COMPLETED":
            self._push({args.var: run.to_frame()})
        else:
            self._push({args.var: run})
            reason = f": {run.evaluation.error}" if run.evaluation.error else ""
            print(
                f"evaluation {run.evaluation_id} ended {status}{reason}; "
                f"{args.var} holds the EvaluationRun to inspect",
                file=sys.stderr,
            )
        return None


ScaimindMagics.scaimind.__doc__ = PARSER.format_help()


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics and their `%config` settings (called by `%load_ext scaimind_nb`)."""
    # Magics.__init__ appends the instance to shell.configurables, which is what %config reads
    ipython.register_magics(ScaimindMagics(shell=ipython))


def unload_ipython_extension(ipython: Any) -> None:
    """Stop pollers, close clients and drop the magics (called by `%unload_ext`/`%reload_ext`)."""
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
