"""The `scaimind` pytest11 entry point: options, marker, hookspecs; the session machinery loads only when active."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_scaimind import _options, _state


def pytest_addoption(parser: pytest.Parser) -> None:
    _options.addoption(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from pytest_scaimind import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "scaimind(name, dataset=None, num_samples=None, parameters=None): declare a benchmark spec a "
        "test gates on, so it joins the session's single evaluation even when its assert_benchmark "
        "arguments are computed at run time",
    )
    if not _options.uses_plugin(config) or getattr(config.option, "help", False):
        return  # inactive: the other options are neither read nor validated
    from pytest_scaimind._policy import Policy

    options = _options.Options.from_config(config)
    if not options.job:  # only --scaimind-require-gates asked for the plugin
        inactive = "--scaimind-job is not set, so every gate test was skipped"
        policy = Policy(config, options, lambda: [], inactive=inactive)
        config.pluginmanager.register(policy, "scaimind-policy")
        return
    from pytest_scaimind._session import ScaimindSession

    session = ScaimindSession(config, options)
    config.pluginmanager.register(session, "scaimind-session")
    config.stash[_state.SESSION] = session
    policy = Policy(config, options, lambda: session.records, lambda: session.power.values())
    config.pluginmanager.register(policy, "scaimind-policy")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> object:
    """Tell `assert_benchmark` which test (and so which config's session) is running."""
    token = _state.RUNNING.set(item)
    try:
        return (yield)
    finally:
        _state.RUNNING.reset(token)


class Gates:
    """The `scaimind` fixture: `scaimind.assert_benchmark(...)` gates like the function does."""

    def __init__(self, item: pytest.Item) -> None:
        self._item = item

    @property
    def active(self) -> bool:
        """Whether gates are judged in this session (--scaimind-job given)."""
        return _state.session_of(self._item) is not None

    def assert_benchmark(self, name: str, **criteria: Any) -> Any:
        """See `pytest_scaimind.assert_benchmark`; the same arguments, the same verdicts."""
        __tracebackhide__ = True
        from pytest_scaimind import assert_benchmark

        token = _state.RUNNING.set(self._item)
        try:
            return assert_benchmark(name, **criteria)
        finally:
            _state.RUNNING.reset(token)


@pytest.fixture
def scaimind(request: pytest.FixtureRequest) -> Gates:
    """Benchmark gates as a fixture, for those who prefer one to the import."""
    return Gates(request.node)
