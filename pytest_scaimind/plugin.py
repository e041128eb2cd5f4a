"""The `scaimind` pytest11 entry point: options, marker, hookspecs; the session machinery loads only when active."""

from __future__ import annotations

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
    options = _options.Options.from_config(config)
    if not options.job:
        return
    from pytest_scaimind._session import ScaimindSession

    session = ScaimindSession(config, options)
    config.pluginmanager.register(session, "scaimind-session")
    _state.activate(config, session)


def pytest_unconfigure(config: pytest.Config) -> None:
    _state.deactivate(config)
