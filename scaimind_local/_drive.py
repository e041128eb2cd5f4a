"""Resolve `scaidrive://org/path` (and, when the operator allows it, local paths) safely.

Three rules live here, each in one place:
- a URI resolves under the drive root or is refused (`Drive.resolve`), checked as text before
  any file-system call, so no URI can make the server fail inside `stat` or `open`;
- what a URI names is a regular file or a folder, never a FIFO, device or socket, checked with
  `stat` and never by opening it (opening a FIFO blocks), and files are read through
  `open_regular`, which cannot block on one either;
- text that leaves the server shows `scaidrive://` URIs and `<placeholders>`, never the
  server's absolute paths (`Drive.hide`).
"""

from __future__ import annotations

import os
import re
import stat
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from ._errors import InvalidBenchmark, shown

SCHEME = "scaidrive://"
NAME_MAX = 255
"""Longest path component, in bytes (Linux's NAME_MAX)."""
PATH_MAX = 4096
"""Longest path the server resolves, in bytes, drive root included (Linux's PATH_MAX)."""
_KINDS = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def _kind(mode: int) -> str | None:
    """None for a regular file or a folder, else what the entry is ("a FIFO", ...)."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def regular_file(path: Path, what: str) -> os.stat_result:
    """`stat` of a regular file (never opened), or InvalidBenchmark naming `what` and why."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise InvalidBenchmark(f"{shown(what)} does not exist on this coordinator") from None
    except OSError as exc:
        raise InvalidBenchmark(f"{shown(what)} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else _kind(st.st_mode)
        raise InvalidBenchmark(f"{shown(what)} is {kind}, not a regular file: refused")
    return st


def open_regular(
    path: Path, what: str, *, encoding: str | None = None, newline: str | None = None
) -> IO[Any]:
    """Open a regular file for reading (binary, or text with `encoding`); a FIFO, device or
    socket is refused, as InvalidBenchmark naming `what`, without blocking.

    `stat` refuses them before any open (opening a device can act on it); the open itself uses
    O_NONBLOCK and is checked again with `fstat`, so an entry swapped in between cannot block
    the reader either. O_NONBLOCK has no effect on reads of a regular file.
    """
    regular_file(path, what)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        raise InvalidBenchmark(f"{shown(what)} cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise InvalidBenchmark(f"{shown(what)} changed into something that is not a regular file")
    if encoding is None:
        return os.fdopen(fd, "rb")
    return os.fdopen(fd, "r", encoding=encoding, newline=newline)


def _check_text(uri: str, path: str | None = None) -> None:
    """Refuse, before any file-system call, text the codec or the kernel would choke on.

    Without `path`, checks the URI as sent (NUL bytes, lone surrogates, a sane length); with
    it, the decoded local path it names (length and component limits of the kernel).
    """
    text = uri if path is None else path
    if "\x00" in text:
        raise InvalidBenchmark(f"{shown(uri)} contains a NUL byte (or %00): refused")
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidBenchmark(f"{uri[:80]!a} is not valid Unicode (a lone surrogate?)") from None
    limit = PATH_MAX if path is not None else 3 * PATH_MAX  # %xx takes three bytes a byte
    if len(encoded) > limit:
        raise InvalidBenchmark(f"{shown(uri)} is longer than {limit} bytes: refused")
    if path is not None and any(
        len(part) > NAME_MAX for part in encoded.replace(b"\\", b"/").split(b"/")
    ):
        raise InvalidBenchmark(
            f"{shown(uri)} has a path component longer than {NAME_MAX} bytes: refused"
        )


class Drive:
    """Maps drive URIs to files under one root; nothing outside the root is ever returned.

    `private` names other server folders (the database's, the MMLU data's) that `hide`
    replaces by `<name>` in outgoing text, beside the Python installation, the temporary
    folder, the home folder and the working directory.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        allow_local_paths: bool = False,
        private: Mapping[str, str | Path | None] | None = None,
    ) -> None:
        self.root = Path(root).resolve()
        self.allow_local_paths = allow_local_paths
        self._hidden = _hidden_roots(self.root, private or {})
        self._pattern = re.compile(
            "|".join(
                rf"(?<![\w.~-]){re.escape(p)}(?:/|(?![\w.~-]))"
                for p in sorted(self._hidden, key=len, reverse=True)
            )
        )

    def resolve(self, uri: str) -> Path:
        """The local path a URI names, or InvalidBenchmark saying why it is refused.

        A path that exists must be a regular file or a folder (checked with `stat`, never
        opened); one that does not exist is returned, for the caller's own message.
        """
        if not isinstance(uri, str) or not uri.strip():
            raise InvalidBenchmark("empty URI: use scaidrive://org/path")
        _check_text(uri)
        if uri.startswith(SCHEME):
            path = self._under_root(uri, uri[len(SCHEME) :])
        elif "://" in uri and not uri.startswith("file://"):
            scheme = uri.split("://", 1)[0]
            raise InvalidBenchmark(
                f"unsupported URI scheme {scheme[:20]!r} in {shown(uri)}: use scaidrive://org/path"
            )
        elif not self.allow_local_paths:
            raise InvalidBenchmark(
                f"local paths are disabled on this coordinator ({shown(uri)}): put the file under "
                "the drive root and use scaidrive://org/path, or start it with --allow-local-paths"
            )
        else:
            local = unquote(urlsplit(uri).path) if uri.startswith("file://") else uri
            _check_text(uri, local)
            path = self._resolved(uri, Path(local).expanduser())
        self._check_kind(uri, path)
        return path

    def _under_root(self, uri: str, rest: str) -> Path:
        rest = unquote(rest)
        _check_text(uri, str(self.root / rest))
        parts = rest.replace("\\", "/").split("/")
        if rest.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise InvalidBenchmark(
                f"{shown(uri)} escapes the drive root: use a relative scaidrive://org/path without '..'"
            )
        path = self._resolved(uri, self.root / rest)
        if not path.is_relative_to(self.root):
            raise InvalidBenchmark(
                f"{shown(uri)} resolves outside the drive root (symlink?): refused"
            )
        return path

    @staticmethod
    def _resolved(uri: str, path: Path) -> Path:
        try:
            return path.resolve()
        except RuntimeError:  # a symlink loop (its message holds the absolute path)
            raise InvalidBenchmark(f"{shown(uri)} cannot be resolved: a symlink loop") from None
        except OSError as exc:
            raise InvalidBenchmark(f"{shown(uri)} cannot be resolved: {exc.strerror}") from None

    @staticmethod
    def _check_kind(uri: str, path: Path) -> None:
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            return
        except OSError as exc:  # ELOOP, ENOTDIR, EACCES ...
            raise InvalidBenchmark(f"{shown(uri)} cannot be read: {exc.strerror}") from None
        kind = _kind(mode)
        if kind is not None:
            raise InvalidBenchmark(f"{shown(uri)} is {kind}, not a regular file or folder: refused")

    def hide(self, text: str) -> str:
        """`text` with the server's absolute paths replaced: the drive root by `scaidrive://`,
        other known folders by `<name>` (`<python>/lib/…`, `<tmp>/…`)."""
        if not self._hidden or "/" not in text:
            return text
        return self._pattern.sub(self._replacement, text)

    def _replacement(self, match: re.Match[str]) -> str:
        found = match.group(0)
        label = self._hidden[found.rstrip("/")]
        return label if label.endswith("/") or not found.endswith("/") else label + "/"

    def hide_all(self, value: Any) -> Any:
        """`hide` applied to every string of a JSON value (keys are left as they are)."""
        if isinstance(value, str):
            return self.hide(value)
        if isinstance(value, dict):
            return {k: self.hide_all(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.hide_all(v) for v in value]
        return value


def _cwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:  # the working directory was deleted
        return None


def _hidden_roots(root: Path, private: Mapping[str, str | Path | None]) -> dict[str, str]:
    """Absolute folder -> what outgoing text shows instead, each also under its real path."""
    named: list[tuple[str | Path | None, str]] = [(root, SCHEME)]
    named += [(path, f"<{name}>") for name, path in private.items()]
    named += [(path, "<python>") for path in (sys.prefix, sys.base_prefix, sys.exec_prefix)]
    named += [(tempfile.gettempdir(), "<tmp>"), (Path.home(), "<home>"), (_cwd(), "<cwd>")]
    hidden: dict[str, str] = {}
    for path, label in named:
        if not path:
            continue
        for form in (Path(path).expanduser().absolute(), Path(path).expanduser().resolve()):
            text = str(form).rstrip("/")
            if text.count("/") >= 1 and len(text) > 1 and text not in hidden:
                hidden[text] = label
    return hidden
