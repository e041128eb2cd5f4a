"""The baseline JSON file: load, look up a spec's stored or live reference, and bless new values."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_scaimind._record import GateRecord
from scaimind_nb import metric_key

FORMAT = "scaimind-baseline/1"


class BaselineError(ValueError):
    """The baseline file cannot be read or has the wrong shape."""


@dataclass
class Baseline:
    """Reference values per benchmark spec label; an entry is stored figures or a live source."""

    path: Path | None = None
    benchmarks: dict[str, dict[str, Any]] = field(default_factory=dict)
    default: dict[str, Any] | None = None

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None) -> Baseline:
        """Read `path` (a missing file is an empty baseline, so a first bless can create it)."""
        if path is None:
            return cls()
        file = Path(path)
        if not file.exists():
            return cls(file)
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise BaselineError(
                f"cannot read baseline {file}: {exc}; fix the JSON or delete the file and re-bless"
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("benchmarks", {}), dict):
            raise BaselineError(
                f"baseline {file} must be an object with a 'benchmarks' object (see README, baseline format)"
            )
        default = data.get("default")
        if default is not None and not is_live(default):
            raise BaselineError(
                f'baseline {file}: \'default\' must be {{"job_id": …}} or {{"evaluation_id": …}}'
            )
        for label, entry in data.get("benchmarks", {}).items():
            if not isinstance(entry, dict) or not (
                is_live(entry) or isinstance(entry.get("metrics"), dict)
            ):
                raise BaselineError(
                    f"baseline {file}: entry {label!r} needs 'metrics' or a live 'job_id'/'evaluation_id'"
                )
        return cls(file, dict(data.get("benchmarks", {})), default)

    def entry(self, label: str) -> dict[str, Any] | None:
        """The entry for a spec label, else the file's live `default`, else None."""
        return self.benchmarks.get(label) or self.default

    def missing_hint(self, label: str) -> str:
        """Why there is no baseline and how to record one (for a gate's failure message)."""
        if self.path is None:
            return "no baseline: pass --scaimind-baseline=PATH and run once with --scaimind-update-baseline to record one"
        return f"no baseline for {label!r} in {self.path}: run once with --scaimind-update-baseline to record it"

    def bless(self, records: list[GateRecord], context: dict[str, Any]) -> None:
        """Store each record's figures under its spec label, noting where they came from."""
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        for record in records:
            if record.metrics is None:
                continue
            figures = dict(record.metrics)
            if record.metric is not None and record.score is not None:
                figures[record.metric] = record.score
            self.benchmarks[record.benchmark] = {
                "spec": record.spec,
                "metrics": {
                    name: _figure(value, (record.stderr or {}).get(name))
                    for name, value in figures.items()
                },
                "num_samples": record.n,
                "source": {
                    "evaluation_id": record.evaluation_id,
                    "job_id": context.get("job_id"),
                    "model_uri": context.get("model_uri"),
                    "checkpoint_id": context.get("checkpoint_id") or "",
                    "recorded_at": now,
                },
            }

    def save(self) -> None:
        """Write the file atomically with sorted keys, so diffs in review stay small."""
        if self.path is None:
            raise BaselineError("--scaimind-update-baseline needs --scaimind-baseline=PATH")
        data: dict[str, Any] = {
            "format": FORMAT,
            "benchmarks": dict(sorted(self.benchmarks.items())),
        }
        if self.default is not None:
            data["default"] = self.default
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)


def stored_value(entry: dict[str, Any], metric: str) -> float | None:
    """A stored entry's value for `metric` (exact name first, then blind match)."""
    metrics = entry.get("metrics") or {}
    found = metrics.get(metric)
    if found is None:
        found = next((v for k, v in metrics.items() if metric_key(k) == metric_key(metric)), None)
    if isinstance(found, dict):
        found = found.get("value")
    return float(found) if isinstance(found, int | float) and not isinstance(found, bool) else None


def _figure(value: float, stderr: float | None) -> dict[str, float]:
    return {"value": value} if stderr is None else {"value": value, "stderr": stderr}


def is_live(entry: Any) -> bool:
    """Whether an entry names a job or evaluation to compare against live."""
    return (
        isinstance(entry, dict)
        and ("job_id" in entry or "evaluation_id" in entry)
        and "metrics" not in entry
    )
