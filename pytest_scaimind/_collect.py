"""Collection-time discovery: literal `assert_benchmark(...)` calls and `scaimind` markers per test."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_scaimind._gates import Gate, make_gate

_MISSING = object()


@dataclass
class ItemGates:
    """What one test gates on: the gates known now, and whether some are only known at run time."""

    gates: list[Gate] = field(default_factory=list)
    dynamic: bool = False


class Scanner:
    """Parses each test module once and reads the gate calls inside each collected test function."""

    def __init__(self) -> None:
        self._modules: dict[Path, dict[str, ast.AST]] = {}

    def scan(self, item: pytest.Item) -> ItemGates | None:
        """The gates of `item`, or None when it is not a gate test; bad literal arguments raise ValueError."""
        found = ItemGates()
        for marker in item.iter_markers("scaimind"):
            _check_name_arguments(
                "@pytest.mark.scaimind", len(marker.args), "name" in marker.kwargs
            )
            found.gates.append(make_gate(*marker.args, spec_only=True, **marker.kwargs))
        func = self._function(item)
        if func is not None:
            local = _local_names(func)
            for call in (n for n in ast.walk(func) if isinstance(n, ast.Call) and _is_gate_call(n)):
                gate = self._literal_gate(call, item, local)
                if gate is None:
                    found.dynamic = True
                else:
                    found.gates.append(gate)
        return found if found.gates or found.dynamic else None

    def _function(self, item: pytest.Item) -> ast.AST | None:
        obj = getattr(item, "obj", None)
        qualname = getattr(obj, "__qualname__", None)
        module = getattr(item, "module", None)
        source = getattr(module, "__file__", None)
        if qualname is None or source is None or not str(source).endswith(".py"):
            return None
        path = Path(source)
        if path not in self._modules:
            try:
                tree = ast.parse(path.read_bytes(), filename=str(path))
            except (OSError, SyntaxError, ValueError):
                tree = ast.Module(body=[], type_ignores=[])
            self._modules[path] = _functions_by_qualname(tree)
        return self._modules[path].get(qualname)

    def _literal_gate(self, call: ast.Call, item: pytest.Item, local: set[str]) -> Gate | None:
        """The gate of a call whose arguments are all literals, parameters or module constants.

        A call that cannot work whatever its values (no name, a positional threshold) raises
        ValueError now rather than a TypeError when the test runs.
        """
        if any(isinstance(a, ast.Starred) for a in call.args):
            return None
        if any(kw.arg is None for kw in call.keywords):
            return None
        named = any(kw.arg == "name" for kw in call.keywords)
        _check_name_arguments("assert_benchmark", len(call.args), named)
        module_globals = getattr(getattr(item, "module", None), "__dict__", {})
        namespace = {k: v for k, v in module_globals.items() if k not in local}
        namespace.update(getattr(getattr(item, "callspec", None), "params", {}))
        kwargs = {kw.arg: _value(kw.value, namespace) for kw in call.keywords if kw.arg}
        name = kwargs.pop("name") if named else _value(call.args[0], namespace)
        if name is _MISSING or any(v is _MISSING for v in kwargs.values()):
            return None
        gate = make_gate(name, **kwargs)
        if gate.metric is not None and _named_proportion(gate.metric):
            problem = proportion_scale_problem(gate, gate.metric)
            if problem is not None:
                raise ValueError(problem)
        return gate


def _check_name_arguments(what: str, positional: int, named: bool) -> None:
    """The benchmark name is the one positional argument (or `name=`); thresholds are keywords."""
    if positional == 0 and not named:
        raise ValueError(f'{what} needs a benchmark name, e.g. {what}("mmlu", min_score=0.6)')
    if positional + named > 1:
        raise ValueError(
            f"{what} takes only the benchmark name positionally (or as name=); pass thresholds "
            f'and the rest by keyword, e.g. {what}("mmlu", min_score=0.6)'
        )


def proportion_scale_problem(gate: Gate, metric: str) -> str | None:
    """Why a threshold cannot be meant for `metric`, a proportion in [0, 1] (60 for 0.6), or None."""
    for option in ("min_score", "max_drop"):
        value = getattr(gate, option)
        if value is None or value <= 1:
            continue
        if value <= 100:
            return (
                f"{option}={value:g} is a percentage, but {metric} is a proportion in [0, 1]: "
                f"did you mean {option}={value / 100:g}?"
            )
        return f"{option}={value:g} can never be met by {metric}, a proportion in [0, 1]"
    return None


def _named_proportion(metric: str) -> bool:
    """Whether a metric's name alone makes it a proportion (accuracy, exact_match, pass@1, ...).

    Asks the one rule in scaimind_nb: a record that declares no proportions takes these names
    for proportions when their value lies in [0, 1].
    """
    from scaimind_nb import BenchmarkResult

    return BenchmarkResult("probe", {metric: 0.5}).is_proportion(metric)


def _is_gate_call(node: ast.Call) -> bool:
    func = node.func
    return (isinstance(func, ast.Name) and func.id == "assert_benchmark") or (
        isinstance(func, ast.Attribute) and func.attr == "assert_benchmark"
    )


def _local_names(func: ast.AST) -> set[str]:
    """Names the test binds itself (arguments, assignments, loop targets): not module constants."""
    names = {
        n.id for n in ast.walk(func) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)
    }
    names.update(a.arg for a in ast.walk(func) if isinstance(a, ast.arg))
    return names


def _functions_by_qualname(tree: ast.AST) -> dict[str, ast.AST]:
    """Map `Class.method` / `function` qualnames to their definitions (nested classes included)."""
    found: dict[str, ast.AST] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                found[prefix + child.name] = child
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")

    visit(tree, "")
    return found


def _value(node: ast.AST, namespace: dict[str, Any]) -> Any:
    """A literal's value, or a plain name's value when it is a parameter or module constant."""
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    if isinstance(node, ast.Name) and node.id in namespace:
        value = namespace[node.id]
        if value is None or isinstance(value, str | int | float | dict):
            return value
    return _MISSING
