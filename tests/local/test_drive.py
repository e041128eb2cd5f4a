"""scaidrive:// resolution never leaves the drive root; local paths only when allowed."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from scaimind_local import InvalidBenchmark
from scaimind_local._drive import Drive

from ._util import submit

ESCAPES = [
    "scaidrive://../secret.jsonl",
    "scaidrive://org/../../secret.jsonl",
    "scaidrive://org/%2e%2e/%2e%2e/secret.jsonl",
    "scaidrive:///etc/passwd",
    "scaidrive://\\etc\\passwd",
    "scaidrive://org\\..\\..\\secret.jsonl",
    "scaidrive://C:/Windows/win.ini",
    "scaidrive://org/link/secret.jsonl",
    "scaidrive://org/x\x00.jsonl",
]


@pytest.fixture
def drive(tmp_path: Path) -> Drive:
    root = tmp_path / "root"
    (root / "org").mkdir(parents=True)
    (tmp_path / "secret.jsonl").write_text('{"prompt": "p", "reference": "r"}\n')
    os.symlink(tmp_path, root / "org" / "link")
    return Drive(root)


def test_drive_uri_resolves_under_the_root(drive: Drive) -> None:
    assert drive.resolve("scaidrive://org/a/b.jsonl") == drive.root / "org/a/b.jsonl"


@pytest.mark.parametrize("uri", ESCAPES)
def test_escapes_are_refused(drive: Drive, uri: str) -> None:
    with pytest.raises(InvalidBenchmark):
        drive.resolve(uri)


def test_local_paths_need_the_operator_switch(drive: Drive, tmp_path: Path) -> None:
    secret = tmp_path / "secret.jsonl"
    for uri in (str(secret), f"file://{secret}"):
        with pytest.raises(InvalidBenchmark, match="--allow-local-paths"):
            drive.resolve(uri)
        assert Drive(drive.root, allow_local_paths=True).resolve(uri) == secret
    with pytest.raises(InvalidBenchmark, match="unsupported URI scheme 's3'"):
        drive.resolve("s3://bucket/x.jsonl")


@pytest.mark.parametrize("uri", [*ESCAPES[:4], ESCAPES[7]])
def test_api_refuses_traversal_with_400(scored_setup, api: httpx.Client, uri: str) -> None:
    coord, job_id, _, _, _ = scored_setup
    outside = coord.drive_root.parent / "secret.jsonl"
    outside.write_text('{"prompt": "p", "reference": "r"}\n')
    link = coord.drive_root / "org" / "link"
    if not link.exists():
        os.symlink(coord.drive_root.parent, link)
    resp = submit(api, job_id, {"name": "custom-x", "dataset": uri})
    assert resp.status_code == 400, resp.text
    assert "drive root" in resp.json()["error"]["message"]


@pytest.mark.parametrize("uri", ["file:///tmp/a%00b.jsonl", "/tmp/a\x00b.jsonl"])
def test_local_paths_with_a_nul_byte_are_refused_cleanly(tmp_path: Path, uri: str) -> None:
    with pytest.raises(InvalidBenchmark, match="NUL"):
        Drive(tmp_path, allow_local_paths=True).resolve(uri)


def test_a_local_symlink_loop_is_refused_cleanly(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(InvalidBenchmark, match="cannot be resolved"):
        Drive(tmp_path, allow_local_paths=True).resolve(f"file://{loop}/x.jsonl")
