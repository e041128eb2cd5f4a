"""The project's own checks run by the one test command: lint, format, types, the CI entry point,
and the provisioning of what the suite needs beyond pip."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "ruff", "check", "."],
        [sys.executable, "-m", "ruff", "format", "--check", "."],
        [sys.executable, "-m", "mypy"],
    ],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_the_code_is_clean(command: list[str]) -> None:
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def readme_test_command() -> str:
    """The one command in the README's "Run the tests" section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Run the tests", 1)[1]
    return re.search(r"```bash\n(.+?)\n```", section, re.S).group(1).strip()  # type: ignore[union-attr]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    command = readme_test_command()
    assert "\n" not in command, "the README's test command is one command"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert command in [line.strip() for line in ci.splitlines()]


def test_provisioning_names_what_it_cannot_install(monkeypatch: pytest.MonkeyPatch) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        import _provision
    finally:
        sys.path.remove(str(ROOT / "tests"))
    absent = _provision.Requirement(
        "browser", "a browser", lambda: False, debian="no-such-package-scaimind"
    )
    present = _provision.Requirement("reallm", "a model", lambda: True, pip_no_deps="x==1")
    monkeypatch.setattr(_provision, "REQUIREMENTS", (absent, present))
    monkeypatch.setenv("SCAIMIND_TEST_NO_PROVISION", "1")
    said: list[str] = []
    missing = _provision.provision(said.append)
    assert missing == {
        "browser": "needs a browser, missing and SCAIMIND_TEST_NO_PROVISION is set: "
        "apt-get install -y no-such-package-scaimind"
    }
    assert said == []
    monkeypatch.setattr(_provision, "REQUIREMENTS", (present,))
    assert _provision.provision(said.append) == {}


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_every_link_in_the_readme_and_docs_resolves() -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{page.name}: {target} (no such file)")
                continue
            if anchor and file.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", file.read_text(encoding="utf-8"), re.M)
                if anchor not in {_anchor(h) for h in headings}:
                    broken.append(f"{page.name}: {target} (no such section)")
    assert broken == []
