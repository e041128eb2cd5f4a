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


def assert_reopen_safe(nb: Any) -> None:
    """No output refers to a widget: reopened without a kernel, nothing can fail to display."""
    for c in nb.cells:
        for o in c.get("outputs", []):
            assert WIDGET_VIEW not in o.get("data", {}), c.source[:60]


def board_output(c: Any) -> dict[str, Any]:
    """The one progress display of a cell: its final text/plain and HTML."""
    boards = [
        o.data
        for o in c.outputs
        if 'class="scaimind-board"' in o.get("data", {}).get("text/html", "")
    ]
    assert len(boards) == 1, "expected exactly one progress display in the cell"
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
    assert_reopen_safe(nb)
    first = cell(nb, "import scaimind_nb")
    board = board_output(first)
    assert len(first.outputs) == 1
    # the saved output is the final state, readable without widgets
    assert board["text/plain"].startswith("step-1000  eval_")
    assert " COMPLETED " in board["text/plain"] and "custom-arith=0.7778" in board["text/plain"]
    assert (
        'data-status="COMPLETED"' in board["text/html"] and "scaimind-results" in board["text/html"]
    )
    assert 'data-phase="done"' in board["text/html"] and "100% 9/9" in board["text/html"]
    frame_html = outputs(cell(nb, "run.to_frame()"), "text/html")[0]
    assert "exact_match" in frame_html and "0.777778" in frame_html
    assert "--jp-success-color1" in outputs(cell(nb, "run.table("), "text/html")[0]
    magic = cell(nb, "%scaimind evaluate")
    assert len(magic.outputs) == 1  # the returned run does not repeat the display
    assert "custom-arith=1.0000" in board_output(magic)["text/plain"]
    assert "step-3000" in outputs(cell(nb, "results"), "text/html")[0]
    listed = outputs(cell(nb, "past = %scaimind list"))[0]
    assert listed.count("COMPLETED") == 3 and "scaidrive://org/models/demo" in listed
    assert "step-2000" in listed and "score:custom-arith" in listed
    # submitted with wait=False, finished while another cell ran: later.wait() sent the final
    # state again from its own cell, so the recorder rewrote the earlier display in place
    later = board_output(cell(nb, "later = scaimind_nb.evaluate"))
    assert " COMPLETED " in later["text/plain"]
    assert " COMPLETED " in outputs(cell(nb, "later.wait()"))[0]


@pytest.mark.slow
def test_checkpoint_comparison(tmp_path: Path) -> None:
    nb = execute("checkpoint_comparison.ipynb", tmp_path)
    assert_reopen_safe(nb)
    board = board_output(cell(nb, "import scaimind_nb"))
    lines = board["text/plain"].splitlines()
    assert [line.split()[0] for line in lines[:3]] == ["step-1000", "step-2000", "step-3000"]
    assert [line.split()[2] for line in lines[:3]] == ["COMPLETED"] * 3  # rows of one display
    assert board["text/html"].count('class="scaimind-row"') == 3
    table = cell(nb, "table = scaimind_nb.compare")
    text = outputs(table)[0]
    assert "Δ to step-1000" in text and "n=9" in text and "paired" in text
    assert "unpaired" not in text
    assert 'data-significant="true"' in outputs(table, "text/html")[0]
    assert "paired newcombe" in outputs(cell(nb, "table.stats"))[0]
    styled = outputs(cell(nb, "scaimind_nb.styled"), "text/html")[0]
    assert "--jp-success-color1" in styled and "▲" in styled
    assert outputs(cell(nb, "%matplotlib inline"), "image/png")[0]
    changed = outputs(cell(nb, "changed = scaimind_nb.diff"), "text/html")[0]
    for prompt in ("1+1=", "1+2=", "2+0=", "2+1="):
        assert prompt in changed
    assert "fixed" in changed and "broken" not in changed
    printed = cell(nb, "best =").outputs[0]["text"]
    assert "best checkpoint: step-3000 (0.889); 4 items changed from step-1000" in printed


@pytest.mark.slow
def test_release_checklist(tmp_path: Path) -> None:
    nb = execute("release_checklist.ipynb", tmp_path)
    assert_reopen_safe(nb)
    board = board_output(cell(nb, "import scaimind_nb"))
    evaluation_id = board["text/plain"].split()[1]
    assert board["text/plain"].startswith(f"rc1  {evaluation_id}  COMPLETED")
    checks = outputs(cell(nb, "checks ="))[0]
    assert "passed" in checks and "True" in checks
    assert "1 passed" in cell(nb, "import pathlib").outputs[0]["text"]
    report = outputs(cell(nb, "from IPython.display import Markdown"), "text/markdown")[0]
    assert "1 of 1 passed" in report and "PASS" in report
    assert evaluation_id in report  # the plugin reused the notebook's evaluation
    assert "RELEASE READY" in cell(nb, "ready =").outputs[0]["text"]
