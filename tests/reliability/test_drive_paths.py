"""Generated `scaidrive://` paths never resolve outside the drive root, never make `resolve`
fail with anything but a reason, never name a FIFO, device or socket, and outgoing text never
shows the drive root."""

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

_paths = st.one_of(
    st.lists(
        st.one_of(
            st.sampled_from(_SEGMENTS),
            st.text(max_size=6),
            st.text(st.characters(categories=["Cs"]), min_size=1, max_size=2),  # "\ud800"
            st.integers(250, 300).map(lambda n: "x" * n),  # around NAME_MAX
            st.integers(120, 130).map(lambda n: "é" * n),  # 2 bytes a character
        ),
        min_size=0,
        max_size=8,
    ).map("/".join),
    st.integers(1000, 5000).map(lambda n: "org/" * n + "x"),  # thousands of segments
)
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
    os.mkfifo(root / "org" / "fifo")
    os.symlink(root / "org" / "fifo", root / "org" / "to-fifo")
    return Drive(root)


def _check(drive: Drive, uri: str) -> None:
    try:
        path = drive.resolve(uri)
    except InvalidBenchmark as exc:
        assert str(exc), "a refusal must say why"
        return
    real = Path(os.path.realpath(path))
    assert real.is_relative_to(drive.root), f"{uri!r} resolved to {real}, outside {drive.root}"
    assert not real.exists() or real.is_file() or real.is_dir(), f"{uri!r} is a special file"
    assert str(drive.root) not in drive.hide(f"cannot read {path}: no such file")


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
        "org/fifo",
        "org/to-fifo",
        "org/\ud800",
        "org/" + "x" * 256,
        "org/" * 1100 + "x",
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


def test_hide_replaces_the_drive_root_and_other_server_folders(tmp_path: Path) -> None:
    root = tmp_path / "drive"
    drive = Drive(root, private={"db": tmp_path / "db", "mmlu_data": None})
    text = f"no model at {root}/org/m; see {tmp_path}/db/x.sqlite and {root}"
    assert drive.hide(text) == "no model at scaidrive://org/m; see <db>/x.sqlite and scaidrive://"
    assert drive.hide(f"{root}-sibling/x") == f"{drive.hide(str(tmp_path))}/drive-sibling/x"
    assert drive.hide("scaidrive://org/tmp/x and https://host/tmp") == (
        "scaidrive://org/tmp/x and https://host/tmp"
    )
    assert drive.hide_all({"k": [f"{root}/a", 3]}) == {"k": ["scaidrive://a", 3]}
