"""Generated `scaidrive://` paths never resolve outside the drive root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from scaimind_local._benchmarks.base import InvalidBenchmark
from scaimind_local._drive import Drive

_SEGMENTS = [
    "..",
    ".",
    "",
    "org",
    "data.jsonl",
    "out",
    "loop",
    "drive-sibling",
    "~",
    "C:",
    "c:\\",
    "%2e%2e",
    "%2E%2e",
    ".%2e",
    "%2e.",
    "%2f",
    "%2F",
    "%5c",
    "%5C",
    "..%2f",
    "%2e%2e%2f",
    "%252e%252e",
    "%00",
    "\x00",
    "\\",
    "\\..",
    "..\\..",
    "%c0%ae%c0%ae",
    "\u2025",
    "\uff0e\uff0e",
    "/",
    "//",
    "%2f%2e%2e",
    "etc",
    "passwd",
]

_paths = st.lists(
    st.one_of(st.sampled_from(_SEGMENTS), st.text(max_size=6)), min_size=0, max_size=8
).map("/".join)
_prefixes = st.sampled_from(["", "/", "//", "\\", "org/", "%2f", "/..", "file://", "C:/"])


@pytest.fixture(scope="module")
def drive(tmp_path_factory: pytest.TempPathFactory) -> Drive:
    base = tmp_path_factory.mktemp("drivefuzz")
    root = base / "drive"
    outside = base / "drive-sibling"
    (root / "org").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.jsonl").write_text("{}\n")
    (root / "org" / "data.jsonl").write_text("{}\n")
    os.symlink(outside, root / "org" / "out")
    os.symlink(base, root / "up")
    os.symlink("/", root / "org" / "rootfs")
    os.symlink(root / "org" / "loop", root / "org" / "loop")
    return Drive(root)


def _check(drive: Drive, uri: str) -> None:
    try:
        path = drive.resolve(uri)
    except InvalidBenchmark as exc:
        assert str(exc), "a refusal must say why"
        return
    real = Path(os.path.realpath(path))
    assert real.is_relative_to(drive.root), f"{uri!r} resolved to {real}, outside {drive.root}"


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(prefix=_prefixes, rest=_paths)
def test_generated_drive_paths_stay_under_root(drive: Drive, prefix: str, rest: str) -> None:
    _check(drive, "scaidrive://" + prefix + rest)


@pytest.mark.parametrize(
    "rest",
    [
        "org/out/secret.jsonl",
        "up/drive-sibling/secret.jsonl",
        "org/rootfs/etc/passwd",
        "org/%2e%2e/%2e%2e/drive-sibling/secret.jsonl",
        "org/..%2f..%2fdrive-sibling/secret.jsonl",
        "%2fetc/passwd",
        "org/a%00b",
        "org/a\x00b",
        "org\\..\\..\\drive-sibling",
        "org/loop/x",
        "C:/Windows",
    ],
)
def test_known_escapes_are_refused_with_a_reason(drive: Drive, rest: str) -> None:
    with pytest.raises(InvalidBenchmark, match=r"\S"):
        drive.resolve("scaidrive://" + rest)


def test_inside_paths_still_resolve(drive: Drive) -> None:
    assert drive.resolve("scaidrive://org/data.jsonl") == drive.root / "org" / "data.jsonl"
    assert drive.resolve("scaidrive://org/./data%2Ejsonl") == drive.root / "org" / "data.jsonl"


@pytest.mark.parametrize("uri", ["file:///etc/passwd", "/etc/passwd", "../x", "http://h/x"])
def test_local_paths_refused_unless_allowed(drive: Drive, uri: str) -> None:
    with pytest.raises(InvalidBenchmark, match="scaidrive://"):
        drive.resolve(uri)
