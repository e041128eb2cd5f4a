"""The plugin's options: one table drives the command line, the ini keys and the env fallbacks."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest

# (name, help, env var or None, kind, default); kind: str, float, bool or a choice tuple.
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
        str,
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
        str,
        None,
    ),
    (
        "local_db",
        "SQLite file of the embedded coordinator (--scaimind-host local; default in .pytest_cache)",
        None,
        str,
        None,
    ),
]


def addoption(parser: pytest.Parser) -> None:
    """Register every option as `--scaimind-NAME` and ini key `scaimind_NAME`."""
    group = parser.getgroup("scaimind", "benchmark quality gates (scaimind)")
    for name, help_text, env, kind, _default in OPTIONS:
        flag = "--scaimind-" + name.replace("_", "-")
        env_note = f" [env {env}]" if env else ""
        if kind is bool:
            group.addoption(flag, action="store_true", default=None, help=help_text)
            parser.addini(f"scaimind_{name}", help_text, type="bool", default=False)
            continue
        choices = kind if isinstance(kind, tuple) else None
        group.addoption(
            flag, default=None, choices=choices, metavar=name.upper(), help=help_text + env_note
        )
        parser.addini(f"scaimind_{name}", help_text + env_note, default="")


@dataclass(frozen=True)
class Options:
    """Resolved settings: command line wins, then the ini key, then the env var, then the default."""

    job: str | None
    model_uri: str | None
    checkpoint: str
    host: str | None
    timeout: float
    poll_interval: float | None
    reuse: str
    reuse_window: float
    baseline: str | None
    update_baseline: bool
    report: str | None
    inconclusive: str
    correction: str
    infra_exit_code: int
    require_gates: bool
    local_drive: str | None
    local_db: str | None

    @classmethod
    def from_config(cls, config: pytest.Config) -> Options:
        """Read and validate every option; a bad value is a UsageError naming the option."""
        values: dict[str, Any] = {}
        for name, _help, env, kind, default in OPTIONS:
            raw = config.getoption("scaimind_" + name)
            if raw is None:
                raw = config.getini("scaimind_" + name)
                if raw in ("", False) and env:
                    raw = os.environ.get(env, "")
            values[name] = _convert(name, raw, kind, default)
        return cls(**values)


def _convert(name: str, raw: Any, kind: Any, default: Any) -> Any:
    flag = "--scaimind-" + name.replace("_", "-")
    if kind is bool:
        return bool(raw)
    if raw in (None, ""):
        return default
    raw = str(raw).strip()
    if isinstance(kind, tuple):
        if raw not in kind:
            raise pytest.UsageError(f"{flag} must be one of {', '.join(kind)}, got {raw!r}")
        return raw
    if kind is int:  # the one integer option: an exit code
        try:
            code = int(raw)
        except ValueError:
            code = -1
        if not (code == 1 or 6 <= code <= 255):
            raise pytest.UsageError(
                f"{flag} must be 1 or 6-255 (0 would hide the errors, 2-5 are pytest's own "
                f"exit codes), got {raw!r}"
            )
        return code
    if kind is float:
        try:
            value = float(raw)
        except ValueError:
            raise pytest.UsageError(
                f"{flag} must be a number of {'hours' if name == 'reuse_window' else 'seconds'}, got {raw!r}"
            ) from None
        if value <= 0:
            raise pytest.UsageError(f"{flag} must be positive, got {raw!r}")
        return value
    return raw
