"""The local history: one JSON report per gate session, a line each, for `--scaimind-compare`.

The file is JSONL (default `.scaimind/history.jsonl` in the rootdir, like pytest-benchmark's
`.benchmarks`): each line is the session's whole JSON report (`format: scaimind-report/1`), so
an entry says everything the release checklist said. Lines are appended with one `write` on a
file opened for appending, so concurrent sessions on one machine do not interleave their lines;
a line that does not parse (a crash mid-write, a hand edit) is skipped, never fatal.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPORT_FORMAT = "scaimind-report/1"
"""The format of the JSON report, and so of every history line."""
GITIGNORE = "# created by pytest-scaimind: the gate history is local to this machine\n*\n"


class HistoryError(ValueError):
    """A history reference that names no entry (the message says what the history holds)."""


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, readable id for one session: `20261201T160807Z-a1b2c3`."""
    moment = now or datetime.now(UTC)
    return moment.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


@dataclass
class History:
    """The history file of a session (`path` None: the history is off)."""

    path: Path | None
    gitignore: bool = False
    """Whether a folder this history creates gets a `.gitignore` (the default location does)."""
    skipped: int = field(default=0, init=False)
    """Lines the last `entries()` call could not parse."""

    def entries(self) -> list[dict[str, Any]]:
        """Every readable entry, oldest first."""
        self.skipped = 0
        if self.path is None or not self.path.is_file():
            return []
        found = []
        with self.path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    entry = None
                if isinstance(entry, dict) and entry.get("format") == REPORT_FORMAT:
                    found.append(entry)
                else:
                    self.skipped += 1
        return found

    def find(self, ref: str) -> dict[str, Any] | None:
        """The entry `ref` names: -N (-1 is the latest) or a run id (or a unique prefix of one).

        None when `ref` looks like neither (it may be an evaluation or job id); HistoryError when
        it is an index or a prefix the history cannot satisfy.
        """
        entries = self.entries()
        where = self.path if self.path is not None else "(history off: --scaimind-history=none)"
        index = int(ref) if re.fullmatch(r"-\d+", ref) else None
        if index is not None:
            try:
                return entries[index]
            except IndexError:
                raise HistoryError(
                    f"--scaimind-compare={ref}: the history {where} holds {len(entries)} "
                    f"session(s), so there is no entry {index}"
                ) from None
        exact = [e for e in entries if e.get("run_id") == ref]
        matches = exact or [e for e in entries if str(e.get("run_id", "")).startswith(ref)]
        if len(matches) > 1:
            raise HistoryError(
                f"--scaimind-compare={ref}: {len(matches)} history runs start with it; give more of the id"
            )
        return matches[0] if matches else None

    def append(self, report: dict[str, Any]) -> None:
        """Add one session's report as a line (creating the folder, and its `.gitignore`, if need be)."""
        if self.path is None:
            return
        folder = self.path.parent
        if not folder.exists():
            folder.mkdir(parents=True)
            if self.gitignore:
                (folder / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
        line = (json.dumps(report, sort_keys=True, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
