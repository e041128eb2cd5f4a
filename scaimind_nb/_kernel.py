"""The kernel side of a blocking wait: widget messages handled while the cell blocks, the stop button.

A Jupyter kernel handles shell messages, widget (comm) messages included, on its main thread
between cells, so a click on Cancel while ``evaluate(...)`` blocks would only arrive after the cell
ended. ``jupyter-ui-poll`` solves this by calling ``Kernel.do_one_iteration`` while blocking;
ipykernel 7 no longer has that method (its shell channel thread forwards every message to the
main thread over an inproc socket), so jupyter-ui-poll 1.1 no longer delivers clicks there. This
module does the equivalent for ipykernel 7: while a wait blocks on the main thread it reads that
socket itself, dispatches ``comm_open``/``comm_msg``/``comm_close`` at once (as ipykernel 7.4 does
for a running *async* cell), and hands every other message (the next cells' ``execute_request``,
completions, ...) back to the socket's stream when the wait ends, as if the stream had read it,
so cells still run one after another in the order they were sent. Kernels of another shape fall
back to a plain blocking wait (the stop button still cancels); ``%scaimind doctor`` says which.
"""

from __future__ import annotations

import concurrent.futures
import dis
import inspect
import itertools
import logging
import os
import sys
import threading
import time
import types
from typing import Any

log = logging.getLogger("scaimind_nb")

COMM_MESSAGES = frozenset({"comm_open", "comm_msg", "comm_close"})


class Interrupted(KeyboardInterrupt):
    """The kernel's stop button (Ctrl-C) during a blocking wait: the evaluation is being cancelled.

    IPython shows it as one line (``_render_traceback_``) instead of a traceback; ``bound_to``
    names the variable that received the run's handle, if any.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.bound_to: str | None = None

    def __str__(self) -> str:
        held = f"; `{self.bound_to}` holds its handle" if self.bound_to else ""
        return f"{self.message}{held}"

    def _render_traceback_(self) -> list[str]:
        return [f"Interrupted: {self}"]


# ----------------------------------------------------------------------------- the pump


def _kernel() -> Any:
    """The ipykernel Kernel of this process when called on its main thread, else None."""
    if threading.current_thread() is not threading.main_thread():
        return None
    from ._display import _ipython

    shell = _ipython()
    return getattr(shell, "kernel", None) if shell is not None else None


def _main_stream(kernel: Any) -> Any:
    """The ZMQStream the kernel's main thread reads shell messages from (ipykernel 7), or None.

    With a shell channel thread (subshell-capable kernels) that is the main thread's end of the
    inproc pair the thread forwards every message over; otherwise the shell socket's stream.
    """
    if not (
        inspect.iscoroutinefunction(getattr(kernel, "shell_main", None))
        and getattr(kernel, "session", None) is not None
        and hasattr(kernel, "_main_asyncio_lock")
    ):
        return None
    channel = getattr(kernel, "shell_channel_thread", None)
    if channel is not None:
        stream = getattr(
            channel.manager.get_shell_channel_to_subshell_pair(None), "to_stream", None
        )
    else:
        stream = getattr(kernel, "shell_stream", None)
    ready = stream is not None and getattr(stream, "socket", None) is not None
    return stream if ready and callable(getattr(stream, "_recv_callback", None)) else None


def pump_support(shell: Any = None) -> str:
    """One line for `%scaimind doctor`: does Cancel work while a cell blocks in this kernel?"""
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return "no kernel: the stop button / Ctrl-C cancels a blocking wait"
    if _main_stream(kernel) is None:
        return (
            "clicks are handled after the cell ends on this ipykernel; use the stop button, "
            "or evaluate(..., wait=False) to keep the button live"
        )
    return "works while a cell blocks (widget messages are handled during the wait)"


class CommPump:
    """While a wait blocks the kernel's main thread: handle widget messages, queue the rest."""

    _active = False

    def __init__(self, kernel: Any, stream: Any) -> None:
        self.kernel = kernel
        self.stream = stream
        self.socket = stream.socket
        self.deferred: list[Any] = []

    @classmethod
    def here(cls) -> CommPump | None:
        """A pump for this kernel's main thread, or None (not a kernel, another shape, nested)."""
        kernel = _kernel()
        if kernel is None or cls._active:
            return None
        stream = _main_stream(kernel)
        return cls(kernel, stream) if stream is not None else None

    def wait(self, future: concurrent.futures.Future[Any], timeout: float | None) -> bool:
        """Block until `future` is done or `timeout` passes, handling comm messages meanwhile."""
        import zmq

        waker = _Waker()
        future.add_done_callback(waker.wake)
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        poller.register(waker.read, zmq.POLLIN)
        deadline = None if timeout is None else time.monotonic() + timeout
        CommPump._active = True
        try:
            while not future.done():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                events = dict(poller.poll(None if left is None else max(1, int(left * 1000))))
                if self.socket in events:
                    self._drain()
            return future.done()
        finally:
            CommPump._active = False
            waker.close()
            self._replay()

    def _drain(self) -> None:
        import zmq

        while True:
            try:
                frames = self.socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._dispatch(frames)

    def _dispatch(self, frames: Any) -> None:
        """Handle a comm message now (on this thread, in the cell's context); queue the rest."""
        session = self.kernel.session
        try:
            idents, rest = session.feed_identities(frames, copy=False)
            # a header-only read does not record the signature, so a queued message can still
            # be deserialized (and its signature checked) by the kernel's own dispatch later
            kind = session.deserialize(rest, content=False, copy=False)["header"]["msg_type"]
        except Exception:
            self.deferred.append(frames)  # the kernel's own dispatch reports a broken message
            return
        handler = self.kernel.shell_handlers.get(kind)
        if kind not in COMM_MESSAGES or handler is None or inspect.iscoroutinefunction(handler):
            self.deferred.append(frames)
            return
        try:
            msg = session.deserialize(rest, content=True, copy=False)
            handler(self.kernel.shell_stream, idents, msg)
        except Exception:
            log.exception("scaimind_nb: a widget message failed while the cell was waiting")

    def _replay(self) -> None:
        """Hand the queued messages to the stream they were read from, as if it had read them.

        The stream's own callback takes them the same number of loop steps to the kernel's
        dispatch as messages it read itself before the cell blocked, so all of them reach the
        kernel's (first come, first served) lock in the order they arrived.
        """
        for frames in self.deferred:
            self.stream._run_callback(self.stream._recv_callback, frames)
        self.deferred.clear()


class _Waker:
    """A pipe whose read end a zmq poll watches; `wake` (from any thread) ends the poll.

    The future's done-callback may fire after the wait gave up and closed the pipe, so writes
    and the close share a lock (a closed descriptor number may already belong to another file).
    """

    def __init__(self) -> None:
        self.read, self._write = os.pipe()
        self._lock = threading.Lock()
        self._open = True

    def wake(self, _future: Any = None) -> None:
        with self._lock:
            if self._open:
                os.write(self._write, b"x")

    def close(self) -> None:
        with self._lock:
            self._open = False
            os.close(self.read)
            os.close(self._write)


def wait_for(future: concurrent.futures.Future[Any], timeout: float | None) -> bool:
    """Wait for `future` up to `timeout` seconds; True when done. Widget clicks work meanwhile."""
    pump = CommPump.here()
    if pump is not None:
        return pump.wait(future, timeout)
    done, _ = concurrent.futures.wait([future], timeout=timeout)
    return bool(done)


# ----------------------------------------------------------------------------- binding


def bind_to_caller(value: Any) -> str | None:
    """Assign `value` to the variable the executing cell was about to assign, e.g. `run` in
    ``run = evaluate(...)`` or ``run = %scaimind evaluate ...``, when that call is interrupted.

    Only a plain module-level assignment of the cell counts; anything else binds nothing.
    Returns the name bound.
    """
    from ._display import _ipython

    shell = _ipython()
    if shell is None:
        return None
    namespace = shell.user_ns
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None and not (frame.f_globals is namespace and frame.f_locals is namespace):
        frame = frame.f_back
    if frame is None:
        return None
    name = _stored_after(frame.f_code, frame.f_lasti)
    if name is not None:
        namespace[name] = value
    return name


def _stored_after(code: Any, offset: int) -> str | None:
    """The name the instruction after the one at `offset` stores into, if it is a plain store.

    `offset` is a frame's `f_lasti`: it may point into the inline caches of the call, so the
    call is the last instruction starting at or before it.
    """
    instructions = list(dis.get_instructions(code))
    for here, following in itertools.pairwise(instructions):
        if here.offset <= offset < following.offset:
            if following.opname in ("STORE_NAME", "STORE_GLOBAL"):
                return str(following.argval)
            return None
    return None
