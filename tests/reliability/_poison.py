"""A python-backend model that kills the process it runs in: the coordinator, every time."""

from __future__ import annotations

import os
import signal
from typing import Any


class CoordinatorKiller:
    """Its generate() SIGKILLs its own process, like a native crash or the OOM killer would."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options = options or {}

    def generate(self, prompts: list[str], **kwargs: Any) -> list[str]:
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable: SIGKILL cannot be caught")
