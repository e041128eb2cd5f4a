"""The benchmark runner registry: built-ins, entry points and pluggy plugins.

Third parties either point an entry point of the group `scaimind_local.benchmarks` at a runner
object (or a list of them), or at a plugin implementing the `scaimind_local_benchmarks` hook.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Sequence
from importlib.metadata import entry_points
from typing import Any

import pluggy

from ._benchmarks.base import BenchmarkRunner, InvalidBenchmark

PROJECT = "scaimind_local"
ENTRY_POINT_GROUP = "scaimind_local.benchmarks"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
_BUILTINS = ("custom", "humaneval", "mmlu")
log = logging.getLogger("scaimind_local")


class _Hooks:
    @hookspec
    def scaimind_local_benchmarks(self) -> list[BenchmarkRunner]:  # type: ignore[empty-body]
        """Return the benchmark runners a plugin adds."""


def _is_runner(obj: object) -> bool:
    return all(hasattr(obj, a) for a in ("name", "validate", "run"))


class Registry:
    """Finds the runner for a benchmark name: an exact name first, then the longest prefix."""

    def __init__(self, plugins: Sequence[object] = ()) -> None:
        self._runners: dict[str, BenchmarkRunner] = {}
        for name in _BUILTINS:
            try:
                module = importlib.import_module(f"scaimind_local._benchmarks.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"scaimind_local._benchmarks.{name}":
                    raise
                continue
            self._add([module.RUNNER])
        pm = pluggy.PluginManager(PROJECT)
        pm.add_hookspecs(_Hooks)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plugin must not keep the server from starting
                log.warning("benchmark plugin %s (%s) failed to load: %r", ep.name, ep.value, exc)
                continue
            if _is_runner(obj) or isinstance(obj, list | tuple):
                self._add(obj if isinstance(obj, list | tuple) else [obj])
            else:
                pm.register(obj, name=f"{ep.name}")
        for plugin in plugins:
            pm.register(plugin)
        for runners in pm.hook.scaimind_local_benchmarks():
            self._add(runners)

    def _add(self, runners: Iterable[Any]) -> None:
        for runner in runners:
            if not _is_runner(runner):
                raise TypeError(f"{runner!r} is not a benchmark runner (name, validate, run)")
            self._runners[runner.name] = runner

    def names(self) -> list[str]:
        """Registered names; a prefix shows as `custom-*`."""
        return sorted(n + "*" if n.endswith("-") else n for n in self._runners)

    def get(self, name: str) -> BenchmarkRunner:
        """The runner for `name`, or InvalidBenchmark listing the known names."""
        if name in self._runners and not name.endswith("-"):
            return self._runners[name]
        prefixes = [p for p in self._runners if p.endswith("-") and name.startswith(p)]
        if prefixes and len(name) > len(max(prefixes, key=len)):
            return self._runners[max(prefixes, key=len)]
        raise InvalidBenchmark(
            f"unknown benchmark {name!r}; this coordinator knows: {', '.join(self.names())}"
        )
