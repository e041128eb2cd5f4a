"""What the session says while it waits: progress lines, timeout messages, the interrupt note.

Nothing here polls: `ProgressLines` is the `on_poll` callback of `Client.wait`, and the texts
are built from what the polls saw (`scaimind_nb.PollEvent`, `WaitTimeoutError`).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from pytest_scaimind._policy import PREFIX

if TYPE_CHECKING:
    from scaimind_nb import Evaluation, PollEvent, WaitTimeoutError


def progress(evaluation: Evaluation | None) -> str:
    """`RUNNING, custom-big 12/20, mmlu 0/100` (the status and per-benchmark done/total)."""
    if evaluation is None:
        return "no answer yet"
    parts = [evaluation.status.value]
    parts += [f"{p.benchmark} {p.completed}/{p.total or '?'}" for p in evaluation.progress]
    return ", ".join(parts)


class ProgressLines:
    """An `on_poll` callback writing a line at least every `interval` seconds of waiting.

    The polls come at most `poll_cap` seconds apart (the session caps the client's backoff at
    it), so a line is written once `interval - poll_cap` seconds have passed since the last:
    the next poll might come too late. Lines are thus `interval - poll_cap` to `interval`
    seconds apart (15-30 s by default), unless a single poll is held longer than that.
    """

    def __init__(
        self,
        write: Callable[[str], None],
        interval: float,
        poll_cap: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.write = write
        self.interval = interval
        self.poll_cap = poll_cap
        self.clock = clock
        self.started = clock()
        self.last = self.started

    def __call__(self, event: PollEvent) -> None:
        now = self.clock()
        if now - self.last < self.interval - self.poll_cap:
            return
        self.last = now
        waited = f"{PREFIX}waiting {now - self.started:.0f}s for {event.evaluation_id}: "
        if event.failing_for is not None:
            self.write(
                f"{waited}{_failing(event.error, event.failing_for)}; "
                f"last seen {progress(event.evaluation)}"
            )
        else:
            self.write(waited + progress(event.evaluation))


def _failing(error: Exception | None, seconds: float) -> str:
    """`coordinator unreachable for the last 40s (…)`, or `polls failing …` for other errors."""
    from scaimind_nb import APIConnectionError

    what = "coordinator unreachable" if isinstance(error, APIConnectionError) else "polls failing"
    return f"{what} for the last {seconds:.0f}s ({error})"


def timed_out(exc: WaitTimeoutError, timeout: float) -> str:
    """The gate error of a wait that ran out of the session's --scaimind-timeout, saying what the
    polls saw: a status that did not end, or a coordinator that stopped answering."""
    flag = f"--scaimind-timeout={timeout:g}s (the whole session's wait)"
    if exc.failing_for is not None:
        return (
            f"evaluation {exc.evaluation_id}: {_failing(exc.last_error, exc.failing_for)} of "
            f"{flag}; last seen {progress(exc.last)}; rerun to pick the same evaluation up"
        )
    return (
        f"evaluation {exc.evaluation_id} still {progress(exc.last)} after {flag}; rerun to pick "
        "the same evaluation up (a rerun reuses it) or raise the timeout"
    )


def left_running(
    evaluations: Iterable[Evaluation], host: str, args: Iterable[str], local: bool
) -> list[str]:
    """After an interrupt: the evaluations still running, how to resume them and to cancel them."""
    running = [e for e in evaluations if not e.is_terminal]
    if not running:
        return []
    ids = [e.evaluation_id for e in running]
    lines = [f"{PREFIX}interrupted; {len(running)} evaluation(s) left running on {host}:"]
    lines += [f"  {e.evaluation_id}  {progress(e)}" for e in running]
    lines.append(f"  resume: pytest {shlex.join(args)}   (a rerun reuses them)")
    if local:
        lines.append(
            "  cancel: not needed: the embedded coordinator stopped with this session and "
            "resumes them at its next start"
        )
    else:
        call = (
            f"import scaimind_nb; c = scaimind_nb.Client({host!r}); "
            f"[c.cancel(i) for i in {ids!r} if not c.get(i).is_terminal]"
        )
        lines.append(f"  cancel: python -c {shlex.quote(call)}   (key from SCAIGRID_API_KEY)")
    return lines
