"""Gate records to reports: the terminal summary, the Markdown checklist and the JSON report.

One `Run` (the session's records in collection order, and its facts) feeds every output, so
the terminal, the checklist, `$GITHUB_STEP_SUMMARY`, the JSON report and the history line say
the same thing. The JSON report's shape is `report.schema.json` next to this module.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_scaimind import _table
from pytest_scaimind._compare import Comparison, Row
from pytest_scaimind._record import Action, GateRecord, Outcome

FORMAT = "scaimind-report/1"
"""The JSON report's format (and so each history line's)."""
SCHEMA = Path(__file__).with_name("report.schema.json")
"""The JSON Schema of the report."""

_RENDERED = {
    "test",
    "benchmark",
    "spec",
    "verdict",
    "action",
    "message",
    "criteria",
    "metric",
    "score",
    "threshold",
    "baseline",
    "delta",
    "n",
    "confidence",
    "ci_low",
    "ci_high",
    "n_needed",
    "evaluation_id",
    "reused",
    "metrics",
    "stderr",
    "job_id",
    "model_uri",
    "checkpoint_id",
    "host",
    "index",
    "outcome",
    "proportion",
    "model_digest",
    "data",
    "baseline_source",
    "method",
    "paired",
    "delta_ci_low",
    "delta_ci_high",
    "worse",
    "better",
    "family_size",
    "power_warning",
    # in the JSON only: the figures above and the message already say what these mean
    "primary_metric",
    "proportions",
    "margin",
    "p_value",
    "correction",
    "infra",
    "content_verified",
}
"""GateRecord fields the reports place themselves (or leave to the JSON on purpose); any other
field, one a later area adds, gets a column of its own."""


@dataclass(frozen=True)
class Coordinator:
    """The coordinator as reports name it: by its configured host, never by a passing port."""

    host: str
    """As configured: a URL, or `local`."""
    name: str
    """How reports call it: the URL, or `local (embedded, db …, drive …)`."""
    url: str | None = None
    """Base of links; None for the embedded coordinator, whose port ends with the session."""
    embedded: dict[str, str] | None = None
    """`{db, drive}` of the embedded coordinator."""
    temporary: bool = False
    """The embedded coordinator's database was removed with the session (no cache provider)."""

    def links(self, evaluation_id: str) -> dict[str, str]:
        """The evaluation's record and samples routes: full URLs, or paths on the embedded one."""
        from scaimind_nb import API_PREFIX, Route

        quoted = urllib.parse.quote(evaluation_id, safe="")
        base = self.url or ""
        return {
            "record": base + API_PREFIX + Route.EVALUATION.path(evaluation_id=quoted),
            "samples": base + API_PREFIX + Route.SAMPLES.path(evaluation_id=quoted),
        }

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def status(record: GateRecord) -> str:
    """What a gate came to, agreeing with pytest: passed, failed, error or skipped.

    A gate counts as passed when it passed (an inconclusive one under
    --scaimind-inconclusive=pass included) and pytest passed its test; a gate that passed in a
    test that then failed counts as failed, because pytest failed it.
    """
    if record.action is Action.PASS:
        if record.outcome in ("failed", "xfailed"):
            return "failed"
        if record.outcome == "error":
            return "error"
        return "passed"
    return {Action.FAIL: "failed", Action.ERROR: "error", Action.SKIP: "skipped"}[record.action]


@dataclass
class Run:
    """One session's gates and facts: what every report renders."""

    run_id: str
    generated_at: str
    job_id: str | None
    model_uri: str | None
    checkpoint_id: str
    coordinator: Coordinator
    records: list[GateRecord]
    baseline: dict[str, Any] | None = None
    """`{path, format}` of the baseline file the gates read, when there is one."""
    provenance: dict[str, Any] = field(default_factory=dict)
    """`{git, versions, platform}`."""
    comparison: Comparison | None = None
    history: str | None = None
    """The history file this run is appended to (None: no history)."""
    interrupted: bool = False
    """The session was interrupted (Ctrl-C): its gates are not all there."""
    statistics: dict[str, Any] | None = None
    """The verdict statistics (`_policy.statistics`): power warnings, family-wise error."""

    def __post_init__(self) -> None:
        # collection order; the records of one test keep the order they were judged in
        self.records = sorted(
            self.records, key=lambda r: r.index if r.index is not None else math.inf
        )

    @property
    def model_digest(self) -> str | None:
        return next((r.model_digest for r in self.records if r.model_digest), None)

    def counts(self) -> dict[str, int]:
        """Gates by status, plus how many were inconclusive."""
        found = [status(r) for r in self.records]
        return {
            "gates": len(found),
            "passed": found.count("passed"),
            "failed": found.count("failed"),
            "errors": found.count("error"),
            "skipped": found.count("skipped"),
            "inconclusive": sum(r.verdict is Outcome.INCONCLUSIVE for r in self.records),
        }

    def evaluation_ids(self) -> list[str]:
        """The evaluations the gates read (errored ones included), in order of first use."""
        return list(dict.fromkeys(r.evaluation_id for r in self.records if r.evaluation_id))

    def evaluations(self) -> list[dict[str, Any]]:
        reused = {r.evaluation_id for r in self.records if r.reused}
        verified = {r.evaluation_id: r.content_verified for r in self.records if r.reused}
        return [
            {
                "evaluation_id": e,
                "reused": e in reused,
                "content_verified": verified.get(e),
                "links": self.coordinator.links(e),
            }
            for e in self.evaluation_ids()
        ]

    def datasets(self) -> list[dict[str, Any]]:
        """Per benchmark spec: the digest of the data it scored (None where not recorded)."""
        seen: dict[str, dict[str, Any]] = {}
        for r in self.records:
            if r.benchmark not in seen or (r.data and not seen[r.benchmark].get("digest")):
                data = r.data or {}
                seen[r.benchmark] = {
                    "benchmark": r.benchmark,
                    "digest": data.get("digest"),
                    "records": data.get("records"),
                    "source": data.get("source"),
                }
        return list(seen.values())

    def to_json(self) -> dict[str, Any]:
        """The JSON report (`format: scaimind-report/1`, see report.schema.json)."""
        return {
            "format": FORMAT,
            "run_id": self.run_id,
            "generated_at": self.generated_at,
            "summary": self.counts(),
            "job_id": self.job_id,
            "model": {"uri": self.model_uri, "digest": self.model_digest},
            "checkpoint_id": self.checkpoint_id,
            "coordinator": self.coordinator.to_json(),
            "evaluations": self.evaluations(),
            "datasets": self.datasets(),
            "baseline": self.baseline,
            "provenance": self.provenance,
            "history": self.history,
            "interrupted": self.interrupted,
            "comparison": self.comparison.to_json() if self.comparison else None,
            "statistics": self.statistics,
            "gates": [self._gate_json(r) for r in self.records],
        }

    def _gate_json(self, record: GateRecord) -> dict[str, Any]:
        return {
            **record.to_json(),
            "status": status(record),
            "delta_vs_threshold": _minus(record.score, record.threshold),
            "delta_vs_baseline": _minus(record.score, record.baseline),
            "links": self.coordinator.links(record.evaluation_id) if record.evaluation_id else None,
        }


def _tally(counts: dict[str, int], keys: tuple[str, ...]) -> str:
    """`2 passed, 1 failed, 1 error`: the non-zero counts of `keys`."""
    return ", ".join(
        f"{counts[k]} {'error' if k == 'errors' and counts[k] == 1 else k}"
        for k in keys
        if counts[k]
    )


def _minus(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


# -- cells ------------------------------------------------------------------------------------


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.4f}"


def _interval(record: GateRecord) -> str:
    if record.ci_low is None or record.ci_high is None:
        return "-"
    return f"[{record.ci_low:.4f}, {record.ci_high:.4f}]"


def _delta_interval(record: GateRecord) -> str:
    """The interval of Δ = score - baseline a confidence regression gate tested."""
    if record.delta_ci_low is None or record.delta_ci_high is None:
        return "-"
    return f"[{record.delta_ci_low:+.4f}, {record.delta_ci_high:+.4f}]"


def _discordant(record: GateRecord) -> str:
    """`3 worse / 1 better`: paired binary items the score lost and gained against the baseline."""
    if record.worse is None or record.better is None:
        return "-"
    return f"{record.worse} worse / {record.better} better"


def _g(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _extra_fields(records: list[GateRecord]) -> list[str]:
    """Record fields the reports do not place themselves, set on some record (other areas' additions)."""
    names = [f.name for f in dataclasses.fields(GateRecord) if f.name not in _RENDERED]
    return [n for n in names if any(getattr(r, n) not in (None, "", [], {}) for r in records)]


def _extra_cell(value: Any) -> str:
    if value in (None, "", [], {}):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(getattr(value, "value", value))


def short_label(benchmark: str) -> str:
    """A spec label with its dataset cut to the file name (`custom-qa@qa.jsonl[n=20]`)."""
    return re.sub(r"@[^\[{]*/", "@", benchmark)


def _without_common_prefix(tests: list[str]) -> tuple[list[str], str]:
    """Node ids without the part all share, and that part: the file when all tests are in one
    (`test_release.py`), else the folders their files share (`tests/gates/`)."""
    files = {t.split("::", 1)[0] for t in tests}
    if len(files) == 1 and len(tests) > 1 and all("::" in t for t in tests):
        file = files.pop()
        return [t[len(file) + 2 :] for t in tests], file
    folders = [f.split("/")[:-1] for f in files]
    shared = []
    for parts in zip(*folders, strict=False):
        if len(set(parts)) != 1:
            break
        shared.append(parts[0])
    prefix = "".join(part + "/" for part in shared)
    return [t[len(prefix) :] for t in tests], prefix


def verdict_word(record: GateRecord, full: bool = False) -> str:
    """`PASS`, `FAIL`, `ERROR`, `SKIP` or `INCONCLUSIVE` (with what was done with it, in full)."""
    if record.verdict is not Outcome.INCONCLUSIVE:
        return record.action.value.upper()
    return f"INCONCLUSIVE ({record.action.value})" if full else "INCONCLUSIVE"


# -- the terminal -----------------------------------------------------------------------------


def terminal(run: Run, width: int, full: bool = False) -> list[str]:
    """The gate table and its facts, fitted into `width` columns (everything in full with -v).

    When the labels do not fit, the benchmark column shows tags (`b1`) explained below the
    table, so no label is ever cut; tests are cut in the middle if they must be.
    """
    records = run.records
    tests, common = _without_common_prefix([r.test for r in records])
    evaluations = run.evaluation_ids()
    tags = {e: f"e{i}" for i, e in enumerate(evaluations, 1)}
    benchmarks = {b: f"b{i}" for i, b in enumerate(dict.fromkeys(r.benchmark for r in records), 1)}
    metrics = sorted({r.metric for r in records if r.metric})
    Column = _table.Column
    columns = [
        Column("test", [r.test for r in records], flex=True, shorter=[tests]),
        Column(
            "benchmark",
            [r.benchmark for r in records],
            shorter=[
                [short_label(r.benchmark) for r in records],
                [benchmarks[r.benchmark] for r in records],
            ],
            short_title="bench",
        ),
        Column("metric", [r.metric or "-" for r in records], drop=7 if len(metrics) < 2 else 0),
        Column("score", [_num(r.score) for r in records], right=True),
        Column("interval", [_interval(r) for r in records], drop=9),
        Column("threshold", [_num(r.threshold) for r in records], right=True, short_title="thresh"),
        Column("baseline", [_num(r.baseline) for r in records], right=True, drop=8),
        Column(
            "Δ thr", [_signed(_minus(r.score, r.threshold)) for r in records], right=True, drop=4
        ),
        Column(
            "Δ base", [_signed(_minus(r.score, r.baseline)) for r in records], right=True, drop=2
        ),
        Column("Δ interval", [_delta_interval(r) for r in records], drop=10),
        Column("method", [r.method or "-" for r in records], drop=11),
        Column("n", [_num(r.n) for r in records], right=True, drop=1),
        Column("verdict", [verdict_word(r, full) for r in records]),
    ]
    if len(evaluations) > 1 or full:
        columns.append(
            Column(
                "evaluation",
                [r.evaluation_id or "-" for r in records],
                shorter=[[tags.get(r.evaluation_id or "", "-") for r in records]],
                drop=3,
            )
        )
    if full:
        columns += [
            Column(name, [_extra_cell(getattr(r, name)) for r in records])
            for name in _extra_fields(records)
        ]
    always = ("test", "benchmark", "score", "verdict")
    columns = [c for c in columns if c.title in always or set(c.cells) != {"-"}]
    table = _table.render(columns, width, full=full)
    shown = set(table.titles)
    lines = list(table.lines)
    if table.level >= 2:
        lines += [_table.cut(f"{tag} {short_label(b)}", width) for b, tag in benchmarks.items()]
    notes = []
    if "metric" not in shown and metrics:
        notes.append(f"metric {', '.join(metrics)}")
    if "Δ thr" in shown:
        notes.append("Δ thr = score - threshold")
    if "Δ base" in shown:
        notes.append("Δ base = score - baseline")
    done = sorted({r.action.value for r in records if r.verdict is Outcome.INCONCLUSIVE})
    if done and not full:
        notes.append(f"INCONCLUSIVE gates: {'/'.join(done)} (--scaimind-inconclusive)")
    if table.level and common:
        notes.append(f"tests in {common}")
    counts = run.counts()
    tally = _tally(counts, ("passed", "failed", "errors", "skipped"))
    facts = [
        f"job {run.job_id}",
        f"model {run.model_uri or 'unknown'}",
        *([f"checkpoint {run.checkpoint_id}"] if run.checkpoint_id else []),
    ]
    marks = {e["evaluation_id"]: reuse_mark(e) for e in run.evaluations()}
    for e in evaluations or ["-"]:
        tag = f"{tags[e]} " if len(evaluations) > 1 and table.level > 0 else ""
        facts.append(f"evaluation {tag}{e}" + marks.get(e, ""))
    facts.append(f"coordinator {run.coordinator.host}")
    if run.coordinator.embedded:
        facts[-1] += " (embedded)"
        facts += [f"{k} {v}" for k, v in run.coordinator.embedded.items()]
    elif run.coordinator.name != run.coordinator.host:
        facts[-1] = f"coordinator {run.coordinator.name}"
    return [
        *lines,
        *_table.wrap(notes, width, sep="; "),
        f"{counts['gates']} gate{'s' if counts['gates'] != 1 else ''}: {tally}",
        *_table.wrap(facts, width),
    ]


def comparison_lines(comparison: Comparison, width: int, full: bool = False) -> list[str]:
    """The comparison table (then, now, Δ with its interval, change, verdicts) fitted to `width`."""
    if comparison.error:
        return [f"not compared: {comparison.error}"]
    rows = comparison.rows
    tests, _common = _without_common_prefix([r.test for r in rows])
    columns = [
        _table.Column("test", [r.test for r in rows], flex=True, shorter=[tests]),
        _table.Column(
            "benchmark",
            [r.benchmark for r in rows],
            flex=True,
            drop=2,
            shorter=[[short_label(r.benchmark) for r in rows]],
        ),
        _table.Column("then", [_num(r.then) for r in rows], right=True),
        _table.Column("now", [_num(r.now) for r in rows], right=True),
        _table.Column("Δ", [_signed(r.delta) for r in rows], right=True),
        _table.Column("interval", [_row_interval(r) for r in rows], drop=1),
        _table.Column("change", [r.change for r in rows]),
        _table.Column("verdict", [_row_verdicts(r) for r in rows], drop=3),
    ]
    if full:
        columns.append(_table.Column("method", [r.method or "-" for r in rows]))
        columns.append(_table.Column("note", [r.note or "-" for r in rows]))
    return _table.render(columns, width, full=full).lines


def _row_interval(row: Row) -> str:
    if row.low is None or row.high is None:
        return "-"
    return f"[{row.low:+.4f}, {row.high:+.4f}]"


def _row_verdicts(row: Row) -> str:
    now = (row.now_verdict or "-").upper()
    return f"{row.then_verdict.upper()} → {now}" if row.then_verdict else now


# -- Markdown ---------------------------------------------------------------------------------


def _code(text: str, in_table: bool = False) -> str:
    """`text` as a Markdown code span that survives backticks (and pipes, in a table cell)."""
    text = " ".join(str(text).split())
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    span = f"{fence}{pad}{text}{pad}{fence}"
    return span.replace("|", "\\|") if in_table else span


def _text(text: str, in_table: bool = False) -> str:
    """Plain text with the characters Markdown or HTML would interpret escaped."""
    text = " ".join(str(text).split())
    text = re.sub(r"([\\`*\[\]<>])", r"\\\1", text)
    return text.replace("|", "\\|") if in_table else text


_CRITERIA_ORDER = ("min_score", "max_drop", "max_rel_drop", "confidence")
_VERSION_NAMES = {"scaimind_nb": "scaimind-nb", "python": "Python"}


def criterion(record: GateRecord) -> str:
    """What the gate demands, e.g. `exact_match ≥ 0.8500 (max_drop=0.05 vs baseline 0.9000)`."""
    metric = record.metric or record.criteria.get("metric") or "score"
    order = {name: i for i, name in enumerate(_CRITERIA_ORDER)}
    named = sorted(
        (k for k in record.criteria if k != "metric"), key=lambda k: (order.get(k, len(order)), k)
    )
    args = ", ".join(f"{k}={_g(record.criteria[k])}" for k in named)
    if record.baseline is not None:
        args += f" vs baseline {record.baseline:.4f}"
    if record.threshold is None:
        what = f"{metric}" + ("" if args else ", no threshold")
    elif record.confidence is not None:
        what = f"{record.confidence:.0%} interval of {metric} above {record.threshold:.4f}"
    else:
        what = f"{metric} ≥ {record.threshold:.4f}"
    return f"{what} ({args})" if args else what


def _outcome_line(record: GateRecord) -> str:
    """The verdict and its figures; the message where the figures do not say it all."""
    word = f"**{record.action.value.upper()}**"
    if record.verdict is Outcome.INCONCLUSIVE:
        word += " (inconclusive)"
    figures = []
    if record.score is not None:
        figures.append(f"{record.score:.4f}")
    regression = record.delta_ci_low is not None and record.delta_ci_high is not None
    if record.ci_low is not None and record.ci_high is not None:
        method = f" ({record.method})" if record.method and not regression else ""
        figures.append(f"interval {_interval(record)}{method}")
    if record.score is not None and record.threshold is not None:
        figures.append(f"Δ vs threshold {_signed(record.score - record.threshold)}")
    if record.score is not None and record.baseline is not None:
        delta = f"Δ vs baseline {_signed(record.score - record.baseline)}"
        if regression:
            how = ", ".join(x for x in (record.method, _discordant(record)) if x and x != "-")
            delta += f" in {_delta_interval(record)}" + (f" ({how})" if how else "")
        figures.append(delta)
    if record.n is not None:
        figures.append(f"n={record.n}")
    if record.family_size:
        figures.append(f"Holm over {record.family_size} checks")
    if record.n_needed:
        figures.append(f"need n≈{record.n_needed:,} to decide")
    text = f"{word} {', '.join(figures)}" if figures else word
    if record.action is Action.ERROR or (record.threshold is None and record.criteria):
        text += f": {_text(record.message)}"
    if record.action is Action.PASS and status(record) != "passed":
        text += f"; but pytest reports the test {record.outcome}"
    return text


def markdown(run: Run) -> str:
    """The release checklist: a box per gate, the gate table, evaluations, provenance, comparison."""
    counts = run.counts()
    records = run.records
    tally = _tally(counts, ("failed", "errors", "skipped", "inconclusive"))
    lines = [
        f"## Model release gates: {counts['passed']} of {counts['gates']} passed"
        + (f" ({tally})" if tally else "")
        + (" — SESSION INTERRUPTED, gates missing" if run.interrupted else ""),
        "",
        f"Job {_code(run.job_id or '-')}, model {_code(run.model_uri or 'unknown')}, "
        f"checkpoint {_code(run.checkpoint_id) if run.checkpoint_id else 'final'}, "
        f"run {_code(run.run_id)} at {run.generated_at}.",
        "",
    ]
    for record in records:
        mark = "x" if status(record) == "passed" else " "
        lines.append(
            f"- [{mark}] {_code(record.test)} on {_code(short_label(record.benchmark))}: "
            f"{_text(criterion(record))} → {_outcome_line(record)}"
        )
    lines += ["", "### Gates", "", *_gate_table(run), "", *_statistics_markdown(run)]
    lines += ["### Evaluations", ""]
    lines += _evaluation_lines(run)
    lines += ["", "### Provenance", "", *_provenance_lines(run)]
    lines += ["", *_comparison_markdown(run)]
    return "\n".join(lines).rstrip() + "\n"


def _gate_table(run: Run) -> list[str]:
    records = run.records
    names = {e: f"e{i}" for i, e in enumerate(run.evaluation_ids(), 1)}
    columns: list[tuple[str, bool, list[str]]] = [
        ("#", True, [str(i) for i, _ in enumerate(records, 1)]),
        ("test", False, [_code(r.test, True) for r in records]),
        ("benchmark", False, [_code(r.benchmark, True) for r in records]),
        ("metric", False, [_code(r.metric, True) if r.metric else "-" for r in records]),
        ("score", True, [_num(r.score) for r in records]),
        ("interval", False, [_interval(r) for r in records]),
        ("threshold", True, [_num(r.threshold) for r in records]),
        ("baseline", True, [_num(r.baseline) for r in records]),
        ("Δ vs threshold", True, [_signed(_minus(r.score, r.threshold)) for r in records]),
        ("Δ vs baseline", True, [_signed(_minus(r.score, r.baseline)) for r in records]),
        ("Δ interval", False, [_delta_interval(r) for r in records]),
        ("method", False, [r.method or "-" for r in records]),
        ("discordant", False, [_discordant(r) for r in records]),
        ("n", True, [_num(r.n) for r in records]),
        ("verdict", False, [verdict_word(r, full=True) for r in records]),
        ("evaluation", False, [names.get(r.evaluation_id or "", "-") for r in records]),
    ]
    columns += [
        (name, False, [_text(_extra_cell(getattr(r, name)), True) for r in records])
        for name in _extra_fields(records)
    ]
    optional = {"interval", "baseline", "Δ vs baseline", "Δ interval", "method", "discordant"}
    columns = [c for c in columns if c[0] not in optional or set(c[2]) != {"-"}]
    out = [
        "| " + " | ".join(title for title, _, _ in columns) + " |",
        "|" + "|".join("---:" if right else "---" for _, right, _ in columns) + "|",
    ]
    out += ["| " + " | ".join(row) + " |" for row in zip(*(c[2] for c in columns), strict=True)]
    return out


def _evaluation_lines(run: Run) -> list[str]:
    evaluations = run.evaluations()
    if not evaluations:
        return ["No evaluation was obtained."]
    embedded = run.coordinator.url is None
    lines = []
    for i, e in enumerate(evaluations, 1):
        tag = reuse_mark(e)
        links = e["links"]
        if embedded:
            where = f"record {_code(links['record'])}, samples {_code(links['samples'])}"
        else:
            where = f"[record]({links['record']}), [samples]({links['samples']})"
        lines.append(f"- e{i}: {_code(e['evaluation_id'])}{tag}: {where}")
    if embedded and run.coordinator.embedded and run.coordinator.temporary:
        lines += ["", "The embedded coordinator and its temporary database ended with the session."]
    elif embedded and run.coordinator.embedded:
        db = run.coordinator.embedded.get("db", "")
        lines += [
            "",
            f"The embedded coordinator served these routes for the session only; "
            f"`scaimind-local serve --db {db}` serves them again.",
        ]
    return lines


def _provenance_lines(run: Run) -> list[str]:
    digest = run.model_digest
    lines = [
        f"- model: {_code(run.model_uri or 'unknown')}, digest "
        + (_code(digest) if digest else "not recorded"),
    ]
    for data in run.datasets():
        if data["digest"]:
            extra = ", ".join(
                str(x)
                for x in (
                    f"{data['records']} records" if data["records"] is not None else None,
                    data["source"],
                )
                if x
            )
            where = _code(data["digest"]) + (f" ({_text(extra)})" if extra else "")
        else:
            where = "not recorded"
        lines.append(f"- data of {_code(short_label(data['benchmark']))}: {where}")
    lines.append(
        "- checkpoint: " + (_code(run.checkpoint_id) if run.checkpoint_id else "final model")
    )
    lines.append(f"- coordinator: {_text(run.coordinator.name)}")
    if run.baseline:
        lines.append(
            f"- baseline: {_code(run.baseline.get('path') or '-')}"
            + (f" ({run.baseline['format']})" if run.baseline.get("format") else "")
        )
    git = run.provenance.get("git")
    if git:
        state = {True: "dirty", False: "clean", None: "state unknown"}[git.get("dirty")]
        branch = f" on {_code(git['branch'])}" if git.get("branch") else ""
        lines.append(f"- git: {_code(git['commit'])}{branch}, {state}")
    else:
        lines.append("- git: not run in a git repository")
    versions = run.provenance.get("versions") or {}
    if versions:
        lines.append(
            "- versions: "
            + ", ".join(f"{_VERSION_NAMES.get(name, name)} {v}" for name, v in versions.items())
        )
    if run.provenance.get("platform"):
        lines.append(f"- platform: {_text(run.provenance['platform'])}")
    if run.history:
        lines.append(f"- history: {_code(run.history)}, run {_code(run.run_id)}")
    return lines


def _comparison_markdown(run: Run) -> list[str]:
    comparison = run.comparison
    if comparison is None:
        return [
            "### Comparison",
            "",
            "Not compared: pass `--scaimind-compare=REF` (a history entry such as `-1`, an "
            "evaluation id or a job id), or a baseline file.",
        ]
    lines = [f"### Compared with {_text(comparison.reference.get('label', ''))}", ""]
    if comparison.error:
        return [*lines, f"Not compared: {_text(comparison.error)}"]
    lines += [
        "| test | benchmark | metric | then | now | Δ | interval | method | change | verdict |",
        "|---|---|---|---:|---:|---:|---|---|---|---|",
    ]
    for r in comparison.rows:
        change = r.change + (f" ({_text(r.note, True)})" if r.note else "")
        lines.append(
            f"| {_code(r.test, True)} | {_code(r.benchmark, True)} | "
            f"{_code(r.metric, True) if r.metric else '-'} | {_num(r.then)} | {_num(r.now)} | "
            f"{_signed(r.delta)} | {_row_interval(r)} | {r.method or '-'} | {change} | "
            f"{_row_verdicts(r)} |"
        )
    return lines


def statistics_notes(statistics: dict[str, Any] | None) -> list[str]:
    """The verdict statistics as lines: each power warning, then the family-wise error."""
    found = statistics or {}
    notes = [f"power: {w}" for w in found.get("power_warnings", [])]
    if found.get("family_wise_error"):
        notes.append(found["family_wise_error"])
    return notes


def _statistics_markdown(run: Run) -> list[str]:
    notes = statistics_notes(run.statistics)
    return ["### Verdict statistics", "", *(f"- {_text(n)}" for n in notes), ""] if notes else []


def write(path: str | Path, run: Run) -> Path:
    """Write the report as Markdown (`.md`) or JSON (anything else, normally `.json`)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix.lower() in (".md", ".markdown"):
        target.write_text(markdown(run), encoding="utf-8")
    else:
        target.write_text(json.dumps(run.to_json(), indent=2) + "\n", encoding="utf-8")
    return target


# reuse


def reuse_mark(evaluation: dict[str, Any]) -> str:
    """How an evaluation of `Run.evaluations()` served the gates: `` (reused, content-verified)``
    (matched on model and data digests), `` (reused, not content-verified)`` (on URIs only, from
    a coordinator without a precheck), or nothing when this session submitted it."""
    if not evaluation["reused"]:
        return ""
    verified = "content-verified" if evaluation.get("content_verified") else "not content-verified"
    return f" (reused, {verified})"
