"""The plugin's options: one table drives the command line, the ini keys and the env fallbacks.

Only sessions that use the plugin (a job is given, or --scaimind-require-gates) read and
validate the rest: a bad `SCAIMIND_TIMEOUT` in the environment breaks those sessions with one
line naming it, never an unrelated `pytest` run. Path options resolve like pytest's own `paths` ini values: an ini value
against the ini file's directory, a command-line or environment value against the directory
pytest was started in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PATH = "path"
"""Kind of an option holding a file or directory; the value `none` switches it off."""
DEFAULT_HISTORY = Path(".scaimind") / "history.jsonl"
"""Where the history goes, under the rootdir, unless --scaimind-history says otherwise."""

# (name, help, env var or None, kind, default); kind: str, int, float, bool, PATH or a choice tuple.
OPTIONS: list[tuple[str, str, str | None, Any, Any]] = [
    (
        "job",
        "ScaiGrid job id whose model the gates score; without it gate tests are skipped",
        "SCAIMIND_JOB",
        str,
        None,
    ),
    (
        "model_uri",
        "model URI to evaluate (default: the job's model_uri from the coordinator)",
        "SCAIMIND_MODEL_URI",
        str,
        None,
    ),
    (
        "checkpoint",
        "checkpoint id to score instead of the final model",
        "SCAIMIND_CHECKPOINT",
        str,
        "",
    ),
    (
        "host",
        "coordinator URL, or 'local' to start the embedded coordinator for the session",
        "SCAIGRID_HOST",
        str,
        None,
    ),
    (
        "timeout",
        "seconds to wait for the evaluation before gate tests error (default 3600)",
        "SCAIMIND_TIMEOUT",
        float,
        3600.0,
    ),
    (
        "poll_interval",
        "seconds between status polls while waiting (default: the client's)",
        None,
        float,
        None,
    ),
    (
        "progress_interval",
        "seconds between the progress lines written while waiting (default 30)",
        None,
        float,
        30.0,
    ),
    (
        "reuse",
        "reuse a matching evaluation: auto (default), never, only",
        "SCAIMIND_REUSE",
        ("auto", "never", "only"),
        "auto",
    ),
    (
        "reuse_window",
        "hours back the reuse lookup searches the coordinator's listing (default 168)",
        None,
        float,
        168.0,
    ),
    (
        "baseline",
        "baseline JSON file for max_drop / max_rel_drop gates",
        "SCAIMIND_BASELINE",
        PATH,
        None,
    ),
    (
        "update_baseline",
        "write this run's results into the baseline file (the bless step)",
        None,
        bool,
        False,
    ),
    (
        "report",
        "write a release report: PATH.md (checklist) or PATH.json",
        "SCAIMIND_REPORT",
        PATH,
        None,
    ),
    (
        "history",
        "JSONL file each session's gate records are appended to (default .scaimind/history.jsonl "
        "in the rootdir; 'none' keeps no history)",
        "SCAIMIND_HISTORY",
        PATH,
        DEFAULT_HISTORY,
    ),
    (
        "compare",
        "compare the session with an earlier one: a history entry (-1 the latest, or a run id), "
        "an evaluation id or a job id",
        "SCAIMIND_COMPARE",
        str,
        None,
    ),
    (
        "inconclusive",
        "verdict for an inconclusive confidence gate: fail (default), pass, skip",
        "SCAIMIND_INCONCLUSIVE",
        ("fail", "pass", "skip"),
        "fail",
    ),
    # -- gates (issue 11): verdict policy ------------------------------------------------
    (
        "correction",
        "multiple-testing correction across the session's confidence gates: none (default), holm",
        "SCAIMIND_CORRECTION",
        ("none", "holm"),
        "none",
    ),
    (
        "infra_exit_code",
        "exit code of a session whose only failures are infrastructure errors (default 75; "
        "1 or 6-255)",
        "SCAIMIND_INFRA_EXIT_CODE",
        int,
        75,
    ),
    (
        "require_gates",
        "fail a session that judged no gate (e.g. no --scaimind-job, or every gate skipped)",
        None,
        bool,
        False,
    ),
    (
        "local_drive",
        "drive root of the embedded coordinator (--scaimind-host local; default in .pytest_cache)",
        None,
        PATH,
        None,
    ),
    (
        "local_db",
        "SQLite file of the embedded coordinator (--scaimind-host local; default in .pytest_cache)",
        None,
        PATH,
        None,
    ),
]


def addoption(parser: pytest.Parser) -> None:
    """Register every option as `--scaimind-NAME` and ini key `scaimind_NAME`."""
    group = parser.getgroup("scaimind", "benchmark quality gates (scaimind)")
    for name, help_text, env, kind, _default in OPTIONS:
        env_note = f" [env {env}]" if env else ""
        if kind is bool:
            group.addoption(_flag(name), action="store_true", default=None, help=help_text)
            parser.addini(f"scaimind_{name}", help_text, type="bool", default=False)
            continue
        choices = kind if isinstance(kind, tuple) else None
        group.addoption(
            _flag(name),
            default=None,
            choices=choices,
            metavar=name.upper(),
            help=help_text + env_note,
        )
        parser.addini(f"scaimind_{name}", help_text + env_note, default="")


def _flag(name: str) -> str:
    return "--scaimind-" + name.replace("_", "-")


def uses_plugin(config: pytest.Config) -> bool:
    """Whether the session uses the plugin: a job to gate on, or --scaimind-require-gates (which
    fails a session that judges no gate, so it must act without a job). Nothing else is read."""
    job, _source = _raw(config, "job", "SCAIMIND_JOB")
    if job is not None and str(job).strip():
        return True
    required, _source = _raw(config, "require_gates", None)
    return bool(required)


@dataclass(frozen=True)
class Options:
    """Resolved settings: command line wins, then the ini key, then the env var, then the default."""

    job: str | None
    model_uri: str | None
    checkpoint: str
    host: str | None
    timeout: float
    poll_interval: float | None
    progress_interval: float
    reuse: str
    reuse_window: float
    baseline: str | None
    update_baseline: bool
    report: str | None
    history: str | None
    """Absolute path of the history file, None when the history is off."""
    compare: str | None
    inconclusive: str
    correction: str
    infra_exit_code: int
    require_gates: bool
    local_drive: str | None
    local_db: str | None

    @classmethod
    def from_config(cls, config: pytest.Config) -> Options:
        """Read and validate every option; a bad value is a one-line UsageError naming its source."""
        values: dict[str, Any] = {}
        for name, _help, env, kind, default in OPTIONS:
            raw, source = _raw(config, name, env)
            if kind == PATH:
                values[name] = _path(config, raw, source, default)
            else:
                values[name] = _convert(name, raw, kind, default, source)
        options = cls(**values)
        options._check()
        return options

    def _check(self) -> None:
        if self.report and Path(self.report).suffix.lower() not in (".md", ".markdown", ".json"):
            raise pytest.UsageError(
                f"--scaimind-report must end in .md or .json, got {self.report!r}"
            )
        if self.update_baseline and not self.baseline:
            raise pytest.UsageError(
                "--scaimind-update-baseline needs --scaimind-baseline=PATH to write to"
            )


def _raw(config: pytest.Config, name: str, env: str | None) -> tuple[Any, str]:
    """An option's raw value and where it came from (the flag, the ini key or the env var)."""
    raw = config.getoption("scaimind_" + name)
    if raw is not None:
        return raw, _flag(name)
    raw = config.getini("scaimind_" + name)
    if raw not in ("", False):
        return raw, f"ini scaimind_{name}"
    if env and os.environ.get(env, "").strip():
        return os.environ[env], f"env {env}"
    return None, _flag(name)


def _path(config: pytest.Config, raw: Any, source: str, default: Path | None) -> str | None:
    """A path option made absolute: ini values against the ini file's directory, others the cwd."""
    text = "" if raw is None else str(raw).strip()
    if text.lower() == "none":
        return None
    if not text:
        return str(config.rootpath / default) if default is not None else None
    from_ini = source.startswith("ini ")
    base = (
        config.inipath.parent
        if from_ini and config.inipath is not None
        else config.invocation_params.dir
    )
    return str(base / Path(text).expanduser())


def _convert(name: str, raw: Any, kind: Any, default: Any, source: str) -> Any:
    if kind is bool:
        return bool(raw)
    if raw in (None, ""):
        return default
    raw = str(raw).strip()
    if isinstance(kind, tuple):
        if raw not in kind:
            raise pytest.UsageError(f"{source} must be one of {', '.join(kind)}, got {raw!r}")
        return raw
    if kind is int:  # the one integer option: an exit code
        try:
            code = int(raw)
        except ValueError:
            code = -1
        if not (code == 1 or 6 <= code <= 255):
            raise pytest.UsageError(
                f"{source} must be 1 or 6-255 (0 would hide the errors, 2-5 are pytest's own "
                f"exit codes), got {raw!r}"
            )
        return code
    if kind is float:
        unit = "hours" if name == "reuse_window" else "seconds"
        try:
            value = float(raw)
        except ValueError:
            raise pytest.UsageError(f"{source} must be a number of {unit}, got {raw!r}") from None
        if not value > 0:
            raise pytest.UsageError(f"{source} must be a positive number of {unit}, got {raw!r}")
        return value
    return raw
