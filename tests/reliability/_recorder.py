"""A scripted model that also logs every generate call, so tests can count completed runs."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from scaimind_local.testing import ScriptedModel


class RecordingModel(ScriptedModel):
    """ScriptedModel plus option `log`: a JSONL file getting `{t, pid, prompts}` per call."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.log = Path((options or {})["log"])

    def generate(
        self, prompts: list[str], *, max_new_tokens: int, temperature: float, stop: list[str] | None
    ) -> list[str]:
        out = super().generate(
            prompts, max_new_tokens=max_new_tokens, temperature=temperature, stop=stop
        )
        line = json.dumps({"t": time.time(), "pid": os.getpid(), "prompts": prompts})
        with self.log.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")
        return out
