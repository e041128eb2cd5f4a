"""Provenance facts: git commit, branch and dirty flag (failing soft), versions, platform."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from pytest_scaimind import _provenance

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def _git(path, *args):
    subprocess.run(["git", "-C", str(path), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path):
    _git(tmp_path, "init", "-q", "-b", "release")
    _git(tmp_path, "config", "user.email", "ci@example.com")
    _git(tmp_path, "config", "user.name", "ci")
    (tmp_path / "test_gates.py").write_text("def test_x():\n    pass\n")
    _git(tmp_path, "add", "test_gates.py")
    _git(tmp_path, "commit", "-q", "-m", "gates")
    return tmp_path


def test_commit_branch_and_a_clean_tree(repo):
    head = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert _provenance.git_info(repo) == {"commit": head, "branch": "release", "dirty": False}
    (repo / "untracked.txt").write_text("not part of the commit")
    assert _provenance.git_info(repo)["dirty"] is False  # untracked files do not count


def test_a_changed_tracked_file_makes_it_dirty_and_a_detached_head_has_no_branch(repo):
    (repo / "test_gates.py").write_text("def test_x():\n    assert False\n")
    assert _provenance.git_info(repo)["dirty"] is True
    _git(repo, "checkout", "-q", "--detach")
    assert _provenance.git_info(repo)["branch"] is None


def test_outside_a_repository_or_without_git_there_is_no_git_fact(tmp_path, monkeypatch):
    outside = tmp_path / "plain"
    outside.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert _provenance.git_info(outside) is None
    monkeypatch.setenv("PATH", str(tmp_path / "no-such-bin"))
    assert _provenance.git_info(outside) is None


def test_versions_and_platform():
    versions = _provenance.versions()
    assert set(versions) == {"scaimind_nb", "pytest", "python"}
    assert versions["pytest"] == pytest.__version__
    assert _provenance.platform_name()
