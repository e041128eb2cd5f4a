"""Where `assert_benchmark` finds the running session; stdlib only, so importing it costs nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytest

    from pytest_scaimind._session import ScaimindSession

_active: list[tuple[Any, ScaimindSession]] = []

SKIP_REASON = "scaimind gate skipped: pass --scaimind-job JOB_ID (or set ini scaimind_job) to run benchmark gates"


def activate(config: pytest.Config, session: ScaimindSession) -> None:
    """Make `session` the one gates use (a stack, so pytester's in-process runs nest cleanly)."""
    _active.append((config, session))


def deactivate(config: pytest.Config) -> None:
    """Forget the session of `config` when pytest unconfigures."""
    _active[:] = [(c, s) for c, s in _active if c is not config]


def current() -> ScaimindSession | None:
    """The innermost active session, if any."""
    return _active[-1][1] if _active else None
