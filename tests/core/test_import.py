"""``import scaimind_nb`` loads no heavy module and registers nothing; names resolve lazily."""

from __future__ import annotations

import json
import subprocess
import sys

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


def test_public_names_resolve() -> None:
    import scaimind_nb

    for name in scaimind_nb.__all__:
        assert getattr(scaimind_nb, name) is not None
    assert set(scaimind_nb.__all__) <= set(dir(scaimind_nb))
