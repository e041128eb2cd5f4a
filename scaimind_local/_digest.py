"""Content digests (``sha256:<hex>``) of datasets and model artefacts.

Dataset digests are taken from the bytes a runner parses, every time (see the runners'
`describe`). Model artefacts can be gigabytes, so `FILES` remembers a file's digest by
(device, inode, size, mtime_ns): a rewrite that keeps all four (the same size, in place, within
the filesystem's timestamp granularity) is not seen until the coordinator restarts.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable
from pathlib import Path

PREFIX = "sha256:"
CHUNK = 1 << 20


def text_digest(parts: object) -> str:
    """The digest of a JSON-serialisable value (canonical: sorted keys, no spaces)."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return PREFIX + hashlib.sha256(canonical.encode()).hexdigest()


def file_digest(path: Path) -> str:
    """The digest of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return PREFIX + h.hexdigest()


def regular_files(root: Path) -> list[Path]:
    """Every regular file under `root` (recursively, symlinks to files included), sorted."""
    return sorted(p for p in root.rglob("*") if p.is_file())


class FileDigests:
    """File digests remembered by (device, inode, size, mtime_ns); bounded, thread-safe."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._known: dict[tuple[str, int, int, int, int], str] = {}
        self._lock = threading.Lock()
        self.hashed = 0
        """How many files were actually read (for tests and the benchmark)."""

    def __call__(self, path: Path) -> str:
        st = path.stat()
        key = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            known = self._known.get(key)
        if known is not None:
            return known
        digest = file_digest(path)
        with self._lock:
            self.hashed += 1
            if len(self._known) >= self.size:
                self._known.pop(next(iter(self._known)))
            self._known[key] = digest
        return digest


FILES = FileDigests()
"""The process-wide cache of artefact digests."""


def tree_digest(files: Iterable[tuple[str, Path]], digest: FileDigests | None = None) -> str:
    """One digest over named files: stable when the same files are copied elsewhere.

    `files` are (label, path) pairs; the label (a path relative to the artefact's root) is
    hashed with each file's digest, so renaming a file changes the digest too.
    """
    one = digest or file_digest
    return text_digest(sorted((label, one(path)) for label, path in files))


def relative_label(path: Path, root: Path) -> str:
    """`path` relative to `root` when inside it (POSIX separators), else its file name."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name
