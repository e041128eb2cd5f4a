"""Where `assert_benchmark` finds its session: in the running test's `config.stash`.

The active session lives in `config.stash[SESSION]` (set at configure, only with
--scaimind-job). The plugin records the running test in a context variable around each test's
protocol, so `assert_benchmark` reaches the session of *that* test's config: nested pytester
runs and xdist workers each see their own.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_scaimind._session import ScaimindSession

SESSION = pytest.StashKey["ScaimindSession"]()
"""The active session of a config (absent when the plugin is inactive)."""

RUNNING: contextvars.ContextVar[pytest.Item | None] = contextvars.ContextVar(
    "scaimind_running_item", default=None
)
"""The test whose protocol is running in this context."""

SKIP_REASON = "scaimind gate skipped: pass --scaimind-job JOB_ID (or set ini scaimind_job) to run benchmark gates"


def session_of(item: pytest.Item | None) -> ScaimindSession | None:
    """The active session of `item`'s config, if any."""
    return item.config.stash.get(SESSION, None) if item is not None else None
