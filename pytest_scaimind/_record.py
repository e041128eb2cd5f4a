"""The gate record: everything one judged gate leaves behind, typed once for every output.

The session builds one `GateRecord` per `assert_benchmark` call; it travels to the controller
(xdist included) as JUnit user properties (`to_properties` / `from_properties`), and the terminal
table, the Markdown checklist, the JSON report and the baseline's bless step all read it.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass, field
from typing import Any

PROPERTY = "scaimind_gate"
"""The JUnit property holding the whole record as JSON."""
_FLAT = (
    "benchmark",
    "metric",
    "score",
    "threshold",
    "baseline",
    "delta",
    "n",
    "ci_low",
    "ci_high",
    "verdict",
    "evaluation_id",
)
"""Record fields also written as readable flat JUnit properties (`scaimind_<name>`)."""


class Outcome(enum.StrEnum):
    """What judging a gate found: a quality verdict, or an infrastructure/usage error."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"


class Action(enum.StrEnum):
    """What the session did with the outcome (an inconclusive gate may pass, fail or skip)."""

    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"


@dataclass
class GateRecord:
    """One judged gate: the test, its spec and criteria, the figures and the verdict."""

    test: str
    benchmark: str
    """The spec's label (`name@dataset[n=…]{k=v}`)."""
    spec: dict[str, Any]
    verdict: Outcome
    action: Action
    message: str
    criteria: dict[str, Any] = field(default_factory=dict)
    """The gate's arguments that are set: min_score, max_drop, max_rel_drop, metric, confidence."""
    metric: str | None = None
    score: float | None = None
    threshold: float | None = None
    baseline: float | None = None
    delta: float | None = None
    n: int | None = None
    confidence: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n_needed: int | None = None
    evaluation_id: str | None = None
    reused: bool | None = None
    metrics: dict[str, float] | None = None
    stderr: dict[str, float] | None = None
    job_id: str | None = None
    model_uri: str | None = None
    checkpoint_id: str = ""
    host: str | None = None
    """The coordinator as configured: its URL, or `local` for the embedded one."""
    # -- reports (issue 13): order, pytest's outcome, provenance of the figures ----------------
    index: int | None = None
    """Position of the gate's test in the session's collection: reports list gates in this order."""
    outcome: str | None = None
    """pytest's outcome of the test (passed, failed, error, skipped, xfailed, xpassed); set by the
    process that reports (the xdist controller), so it agrees with pytest's own summary."""
    proportion: bool | None = None
    """Whether the judged metric is a proportion in [0, 1] (`BenchmarkResult.is_proportion`)."""
    model_digest: str | None = None
    """Content digest of the model artefact the evaluation scored, where the coordinator records it."""
    data: dict[str, Any] | None = None
    """`{digest, records, source}` of the data the benchmark scored, where the coordinator records it."""
    baseline_source: dict[str, Any] | None = None
    """Where `baseline` came from: `kind` (stored, live), the file and entry, and the entry's
    recorded source or the live evaluation it resolved to."""
    # reuse
    content_verified: bool | None = None
    """For a reused result: matched on the content digests of model and data (True), or, from a
    coordinator without a precheck, on URIs only (False); None for a result submitted now."""
    # -- gates (issue 11): how the verdict was reached, power and multiplicity ------------
    primary_metric: str | None = None
    """The result's primary metric (per-item outcomes measure it)."""
    proportions: list[str] | None = None
    """The metrics the result declares to be proportions (None: it declares nothing)."""
    method: str | None = None
    """The interval method of a confidence gate: the Δ interval's for a regression check
    (`paired newcombe`, `unpaired normal`, ...), else the score interval's (`wilson`, `normal`)."""
    paired: bool | None = None
    delta_ci_low: float | None = None
    delta_ci_high: float | None = None
    """The interval of Δ = candidate - baseline (confidence regression gates)."""
    worse: int | None = None
    better: int | None = None
    """Paired binary outcomes: items the candidate lost / gained against the baseline."""
    margin: float | None = None
    """The allowed drop a regression gate tested (max_drop, or baseline * max_rel_drop)."""
    p_value: float | None = None
    """One-sided p-value that the gate does not hold (confidence gates)."""
    correction: str | None = None
    family_size: int | None = None
    """Under --scaimind-correction=holm: how many checks the family held."""
    power_warning: str | None = None
    infra: bool = False
    """An ERROR caused by the infrastructure (retryable), not by the gate or its data."""

    def to_json(self) -> dict[str, Any]:
        """The record as plain JSON-ready data (enums as their values)."""
        return {
            k: (v.value if isinstance(v, enum.Enum) else v)
            for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GateRecord:
        """The record `to_json` wrote (unknown keys from another plugin version are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["verdict"] = Outcome(values["verdict"])
        values["action"] = Action(values["action"])
        return cls(**values)

    def to_properties(self) -> list[tuple[str, object]]:
        """JUnit properties: readable flat figures plus the whole record as JSON."""
        data = self.to_json()
        flat = [(f"scaimind_{k}", data[k]) for k in _FLAT if data.get(k) is not None]
        return [*flat, (PROPERTY, json.dumps(data, sort_keys=True))]

    @classmethod
    def from_properties(cls, user_properties: list[tuple[str, object]]) -> list[GateRecord]:
        """The records carried by a test report's user properties."""
        return [cls.from_json(json.loads(str(v))) for k, v in user_properties if k == PROPERTY]
