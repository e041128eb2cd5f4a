"""Resolve `scaidrive://org/path` (and, when the operator allows it, local paths) safely."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from ._benchmarks.base import InvalidBenchmark

SCHEME = "scaidrive://"


class Drive:
    """Maps drive URIs to files under one root; nothing outside the root is ever returned."""

    def __init__(self, root: str | Path, *, allow_local_paths: bool = False) -> None:
        self.root = Path(root).resolve()
        self.allow_local_paths = allow_local_paths

    def resolve(self, uri: str) -> Path:
        """The local path a URI names, or InvalidBenchmark saying why it is refused."""
        if not isinstance(uri, str) or not uri.strip():
            raise InvalidBenchmark("empty URI: use scaidrive://org/path")
        if "\x00" in uri:
            raise InvalidBenchmark(f"URI {uri!r} contains a NUL byte")
        if uri.startswith(SCHEME):
            return self._under_root(uri, uri[len(SCHEME) :])
        if "://" in uri and not uri.startswith("file://"):
            scheme = uri.split("://", 1)[0]
            raise InvalidBenchmark(
                f"unsupported URI scheme {scheme!r} in {uri!r}: use scaidrive://org/path"
            )
        if not self.allow_local_paths:
            raise InvalidBenchmark(
                f"local paths are disabled on this coordinator ({uri!r}): put the file under the "
                "drive root and use scaidrive://org/path, or start it with --allow-local-paths"
            )
        local = unquote(urlsplit(uri).path) if uri.startswith("file://") else uri
        if "\x00" in local:
            raise InvalidBenchmark(f"{uri!r} contains an encoded NUL byte (%00): refused")
        try:
            return Path(local).expanduser().resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long
            raise InvalidBenchmark(f"{uri!r} cannot be resolved: {exc}") from None

    def _under_root(self, uri: str, rest: str) -> Path:
        rest = unquote(rest)
        parts = rest.replace("\\", "/").split("/")
        if rest.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise InvalidBenchmark(
                f"{uri!r} escapes the drive root: use a relative scaidrive://org/path without '..'"
            )
        if "\x00" in rest:
            raise InvalidBenchmark(f"{uri!r} contains an encoded NUL byte (%00): refused")
        try:
            path = (self.root / rest).resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long
            raise InvalidBenchmark(
                f"{uri!r} cannot be resolved under the drive root: {exc}"
            ) from None
        if not path.is_relative_to(self.root):
            raise InvalidBenchmark(f"{uri!r} resolves outside the drive root (symlink?): refused")
        return path
