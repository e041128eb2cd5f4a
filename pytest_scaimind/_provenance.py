"""What a release report says about where it came from: git, package versions, the platform.

Everything here fails soft: a missing git, a directory outside a repository or a slow git
leaves the field empty (None), never the report.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

GIT_TIMEOUT = 5.0
"""Seconds one git call may take before the report goes without git facts."""


def git_info(path: Path) -> dict[str, Any] | None:
    """`{commit, branch, dirty}` of the repository holding `path`, or None outside one.

    `dirty` means tracked files differ from HEAD (untracked files do not count, as with
    `git describe --dirty`); `branch` is None on a detached HEAD.
    """
    commit = _git(path, "rev-parse", "HEAD")
    if commit is None:
        return None
    status = _git(path, "status", "--porcelain", "--untracked-files=no")
    branch = _git(path, "rev-parse", "--abbrev-ref", "HEAD")
    return {
        "commit": commit,
        "branch": None if branch in (None, "HEAD") else branch,
        "dirty": None if status is None else bool(status),
    }


def _git(path: Path, *args: str) -> str | None:
    """One git command's stripped output, None when git is missing or the command fails."""
    try:
        done = subprocess.run(
            ["git", "-C", str(path), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"},
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def versions() -> dict[str, str]:
    """The versions that produced the verdicts: this package (scaimind-nb), pytest and Python."""
    import pytest

    import scaimind_nb

    return {
        "scaimind_nb": scaimind_nb.__version__,
        "pytest": pytest.__version__,
        "python": platform.python_version(),
    }


def platform_name() -> str:
    """The operating system and machine, e.g. `Linux-6.1.0-x86_64-with-glibc2.36`."""
    return platform.platform()
