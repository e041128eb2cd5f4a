"""Every example notebook executed by a real kernel (nbclient); asserts on stored outputs and widget state."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
ARTIFACTS = ROOT / "artifacts" / "notebooks"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def execute(name: str, tmp_path: Path) -> Any:
    """Run notebooks/<name> in a fresh kernel (cwd tmp_path); save the executed copy in artifacts/."""
    import nbformat
    from nbclient import NotebookClient

    path = tmp_path / name
    shutil.copy(ROOT / "notebooks" / name, path)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    try:
        client.execute()
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, ARTIFACTS / name)
    nbformat.validate(nb)  # incomplete widget state would make GitHub reject the file
    return nb


def cell(nb: Any, starts: str) -> Any:
    found = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(starts)]
    assert len(found) == 1, f"no single code cell starting with {starts!r}"
    return found[0]


def outputs(c: Any, kind: str = "text/plain") -> list[str]:
    return [o.get("data", {}).get(kind, "") for o in c.outputs if "data" in o]


def progress_bars(nb: Any) -> list[dict[str, Any]]:
    state = nb.metadata["widgets"][WIDGET_STATE]["state"]
    return [m["state"] for m in state.values() if m["model_name"] == "FloatProgressModel"]


def board_output(c: Any) -> dict[str, Any]:
    boards = [o.data for o in c.outputs if "data" in o and WIDGET_VIEW in o.data]
    assert len(boards) == 1, "expected exactly one live display in the cell"
    return boards[0]


def test_every_notebook_is_covered() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "checkpoint_comparison.ipynb",
        "quickstart.ipynb",
        "release_checklist.ipynb",
    ]
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        assert "ScaiGrid" in "".join(nb["cells"][0]["source"])
        assert "SCAIGRID_HOST" in "".join(nb["cells"][0]["source"])
        assert all(not c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code")


@pytest.mark.slow
def test_quickstart(tmp_path: Path) -> None:
    nb = execute("quickstart.ipynb", tmp_path)
    board = board_output(cell(nb, "import scaimind_nb"))
    # the saved fallback is the final state, readable without widgets
    assert " COMPLETED " in board["text/plain"] and "custom-arith=0.7778" in board["text/plain"]
    assert "VBox" not in board["text/plain"]
    assert (
        'data-status="COMPLETED"' in board["text/html"] and "scaimind-results" in board["text/html"]
    )
    bars = progress_bars(nb)
    assert len(bars) == 4  # one per evaluation: one benchmark each, no stacked duplicates
    assert all(b["bar_style"] == "success" and b["value"] == b["max"] for b in bars)
    assert sorted(b["max"] for b in bars) == [5.0, 9.0, 9.0, 9.0]  # coordinator-reported totals
    frame_html = outputs(cell(nb, "run.to_frame()"), "text/html")[0]
    assert "exact_match" in frame_html and "0.777778" in frame_html
    assert "#d4edda" in outputs(cell(nb, "run.table("), "text/html")[0].replace(": ", ":")
    magic = cell(nb, "%scaimind evaluate")
    assert len(magic.outputs) == 1  # the returned run does not repeat the live display
    assert "custom-arith=1.0000" in board_output(magic)["text/plain"]
    assert "step-3000" in outputs(cell(nb, "results"), "text/html")[0]
    assert outputs(cell(nb, "past = %scaimind list"))[0].count("COMPLETED") == 3
    # submitted with wait=False, finished while another cell waited: the display was updated in place
    later = board_output(cell(nb, "later = scaimind_nb.evaluate"))
    assert " COMPLETED " in later["text/plain"]
    assert " COMPLETED " in outputs(cell(nb, "later.wait()"))[0]


@pytest.mark.slow
def test_checkpoint_comparison(tmp_path: Path) -> None:
    nb = execute("checkpoint_comparison.ipynb", tmp_path)
    board = board_output(cell(nb, "import scaimind_nb"))
    lines = board["text/plain"].splitlines()
    assert [line.split()[1] for line in lines[:3]] == ["COMPLETED"] * 3  # rows of one display
    assert board["text/html"].count('class="scaimind-row"') == 3
    bars = progress_bars(nb)
    assert len(bars) == 3 and all(b["bar_style"] == "success" for b in bars)
    table = outputs(cell(nb, "table = scaimind_nb.compare"))[0]
    assert "step-1000" in table and "0.888889" in table
    styled = outputs(cell(nb, "scaimind_nb.styled"), "text/html")[0].replace(": ", ":")
    assert "#d4edda" in styled and "#f8d7da" in styled
    assert outputs(cell(nb, "%matplotlib inline"), "image/png")[0]
    assert "best checkpoint: step-3000 (0.889)" in cell(nb, "best =").outputs[0]["text"]


@pytest.mark.slow
def test_release_checklist(tmp_path: Path) -> None:
    nb = execute("release_checklist.ipynb", tmp_path)
    board = board_output(cell(nb, "import scaimind_nb"))
    evaluation_id = board["text/plain"].split()[0]
    assert (
        "passed" in outputs(cell(nb, "checks ="))[0] and "True" in outputs(cell(nb, "checks ="))[0]
    )
    assert "1 passed" in cell(nb, "import pathlib").outputs[0]["text"]
    report = outputs(cell(nb, "from IPython.display import Markdown"), "text/markdown")[0]
    assert "1 of 1 passed" in report and "PASS" in report
    assert evaluation_id in report  # the plugin reused the notebook's evaluation
    assert "RELEASE READY" in cell(nb, "ready =").outputs[0]["text"]
