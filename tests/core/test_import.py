"""``import scaimind_nb`` loads no heavy module and registers nothing; the public surface is listed once."""

from __future__ import annotations

import ast
import inspect
import json
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

PROBE = """
import json, logging, sys
before = set(logging.Logger.manager.loggerDict)
import scaimind_nb
heavy = sorted(m for m in ("pandas", "numpy", "httpx", "ipywidgets", "IPython") if m in sys.modules)
registered = sorted(set(logging.Logger.manager.loggerDict) - before)
scaimind_nb.Client
with_client = sorted(m for m in ("pandas", "httpx") if m in sys.modules)
print(json.dumps([heavy, registered, with_client]))
"""


def test_import_is_light_and_lazy() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    heavy, registered, with_client = json.loads(out.stdout)
    assert heavy == []
    assert registered == []
    assert with_client == ["httpx"]


def test_type_checking_imports_are_exactly_the_export_table() -> None:
    import scaimind_nb

    tree = ast.parse(Path(inspect.getfile(scaimind_nb)).read_text())
    [block] = [
        n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"
    ]
    imported = {
        alias.name: "." + (node.module or "")
        for node in ast.walk(block)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert imported == scaimind_nb._EXPORTS
    assert scaimind_nb.__all__ == sorted(scaimind_nb._EXPORTS)


def test_every_public_name_resolves_and_reports_the_package_as_its_module() -> None:
    import scaimind_nb

    for name in scaimind_nb.__all__:
        value = getattr(scaimind_nb, name)
        assert getattr(value, "__module__", "scaimind_nb") == "scaimind_nb", name
    assert (
        "scaimind_nb._"
        not in subprocess.run(
            [
                sys.executable,
                "-c",
                "import scaimind_nb, pydoc; print(pydoc.render_doc(scaimind_nb.ScaimindError))",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    ev = scaimind_nb.parse_evaluation({"evaluation_id": "e", "status": "COMPLETED"})
    assert pickle.loads(pickle.dumps(ev)) == ev
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = scaimind_nb.nope


def test_find_evaluation_is_deprecated_but_still_forwards() -> None:
    import scaimind_nb

    class Fake:
        def find_evaluation(self, *args: object, **kwargs: object) -> str:
            return "found"

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert scaimind_nb.find_evaluation(Fake(), "job", "m", ["mmlu"]) == "found"
    assert "client.find_evaluation" in str(caught[0].message)
    assert caught[0].category is DeprecationWarning
    assert "find_evaluation" not in scaimind_nb.__all__
