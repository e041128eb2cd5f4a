"""The baseline JSON file: strict loading, lookups, per-item outcomes, and the bless step.

Format `scaimind-baseline/1`:

    {"format": "scaimind-baseline/1",
     "benchmarks": {LABEL: STORED or LIVE, ...},
     "default": LIVE}

A STORED entry holds `metrics` ({name: number or {"value", "stderr"}}), and optionally `metric`
(the metric its gates judged), `proportions`, `num_samples`, `items` (per-item outcomes, see
`encode_items`), `discordance` (with the run blessed before it), `spec` and `source`. A LIVE
entry names an `evaluation_id` or a `job_id` (with optional `model_uri`, `checkpoint_id`) to
compare against at run time. Every value is checked at load, and every refusal is one line
naming the file, the entry and the fix.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_scaimind._record import GateRecord
from scaimind_nb import metric_key
from scaimind_nb._models import KNOWN_PROPORTIONS
from scaimind_nb.stats import ItemOutcomes, paired_difference

FORMAT = "scaimind-baseline/1"
REBLESS = "re-create the entry with --scaimind-update-baseline"
_TOP_KEYS = ("format", "benchmarks", "default")
_LIVE_KEYS = ("evaluation_id", "job_id", "model_uri", "checkpoint_id")
_STORED_KEYS = (
    "spec",
    "metric",
    "metrics",
    "proportions",
    "num_samples",
    "items",
    "discordance",
    "source",
)
_NUMBERED = re.compile(r"(.*?)(0|[1-9][0-9]*)", re.DOTALL)


class BaselineError(ValueError):
    """The baseline file cannot be read or has the wrong shape (one line: file, entry, fix)."""


@dataclass
class Baseline:
    """Reference values per benchmark spec label; an entry is stored figures or a live source."""

    path: Path | None = None
    benchmarks: dict[str, dict[str, Any]] = field(default_factory=dict)
    default: dict[str, Any] | None = None
    _items: dict[str, ItemOutcomes] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None) -> Baseline:
        """Read and validate `path` (a missing file is an empty baseline a first bless creates)."""
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
        if not isinstance(data, dict):
            raise BaselineError(
                f'baseline {file} must be a JSON object {{"format": "{FORMAT}", "benchmarks": {{…}}}}'
            )
        if "format" not in data:
            raise BaselineError(
                f'baseline {file} has no "format": add "format": "{FORMAT}" '
                "(or delete the file and re-create it with --scaimind-update-baseline)"
            )
        if data["format"] != FORMAT:
            raise BaselineError(
                f"baseline {file}: format {data['format']!r} is not {FORMAT!r}, the one this "
                "plugin reads; delete the file and re-create it with --scaimind-update-baseline"
            )
        unknown = _unknown(data, _TOP_KEYS)
        if unknown:
            raise BaselineError(
                f"baseline {file}: {unknown}; the file's keys are {', '.join(_TOP_KEYS)}"
            )
        benchmarks = data.get("benchmarks", {})
        if not isinstance(benchmarks, dict):
            raise BaselineError(
                f"baseline {file}: 'benchmarks' must be an object of spec label -> entry"
            )
        default = data.get("default")
        if default is not None:
            _check_live(file, "default", default)
        baseline = cls(file, dict(benchmarks), default)
        for name, entry in benchmarks.items():
            items = _check_entry(file, name, entry)
            if items is not None:
                baseline._items[name] = items
        return baseline

    def entry(self, label: str) -> dict[str, Any] | None:
        """The entry for a spec label, else the file's live `default`, else None."""
        return self.benchmarks.get(label) or self.default

    def items(self, label: str, metric: str) -> tuple[ItemOutcomes | None, str]:
        """The stored per-item outcomes of `metric` for a label, or None and why not."""
        entry = self.benchmarks.get(label)
        outcomes = self._items.get(label)
        if entry is None or outcomes is None:
            return None, "the baseline file stores no per-item outcomes for it"
        measured = entry["items"].get("metric")
        if measured is not None and metric_key(measured) != metric_key(metric):
            return None, f"the baseline's per-item outcomes measure {measured}, not {metric}"
        value = stored_value(entry, metric)
        if value is None or abs(outcomes.mean - value) > 1e-6:
            return None, (
                f"the baseline's per-item outcomes (mean {outcomes.mean:.4f}) do not reproduce "
                f"its stored {metric} {value}: edited by hand? re-bless to pair again"
            )
        return outcomes, ""

    def missing_hint(self, label: str) -> str:
        """Why there is no baseline and how to record one (for a gate's failure message)."""
        if self.path is None:
            return "no baseline: pass --scaimind-baseline=PATH and run once with --scaimind-update-baseline to record one"
        return f"no baseline for {label!r} in {self.path}: run once with --scaimind-update-baseline to record it"

    def bless(
        self,
        records: list[GateRecord],
        context: dict[str, Any],
        outcomes: Mapping[str, ItemOutcomes | str],
    ) -> list[str]:
        """Store each record's figures (and per-item outcomes) under its spec label.

        `outcomes` maps a label to its per-item outcomes, or to the reason there are none.
        Returns one line per entry saying what changed against the file as it was: new,
        old -> new value, unchanged, or kept because this session did not gate it.
        """
        now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        changes: dict[str, str] = {}
        for record in records:
            if record.metrics is None:
                continue
            name = record.benchmark
            figures = dict(record.metrics)
            if record.metric is not None and record.score is not None:
                figures[record.metric] = record.score
            entry: dict[str, Any] = {
                "spec": record.spec,
                "metric": record.metric,
                "metrics": {
                    metric: _figure(value, (record.stderr or {}).get(metric))
                    for metric, value in figures.items()
                },
                "num_samples": record.n,
            }
            if record.proportions is not None:
                entry["proportions"] = sorted(record.proportions)
            previous = self.benchmarks.get(name)
            items = outcomes.get(name)
            note = items if isinstance(items, str) else ""
            if isinstance(items, ItemOutcomes):
                entry["items"] = encode_items(items, record.primary_metric or record.metric)
            discordance = self._discordance(name, previous, items)
            if discordance is not None:
                entry["discordance"] = discordance
            entry["source"] = {
                "evaluation_id": record.evaluation_id,
                "job_id": context.get("job_id"),
                "model_uri": context.get("model_uri"),
                "checkpoint_id": context.get("checkpoint_id") or "",
                "recorded_at": now,
            }
            changes[name] = _change(name, previous, entry, note)
            self.benchmarks[name] = entry
            if isinstance(items, ItemOutcomes):
                self._items[name] = items
        kept = [
            f"  {name}: kept (not gated in this session)"
            for name in sorted(self.benchmarks)
            if name not in changes
        ]
        return [changes[name] for name in sorted(changes)] + kept

    def _discordance(
        self,
        name: str,
        previous: dict[str, Any] | None,
        items: ItemOutcomes | str | None,
    ) -> dict[str, Any] | None:
        """How often the blessed run and the one before it disagree item by item (binary items).

        The power check reads it as the per-item variance of a paired comparison; when it cannot
        be measured now, the earlier figure is kept.
        """
        before = self._items.get(name)
        kept = previous.get("discordance") if previous else None
        if not isinstance(items, ItemOutcomes) or before is None:
            return kept
        if not (items.binary and before.binary) or set(items.scores) != set(before.scores):
            return kept
        diff = paired_difference(before, items, 0.95)
        assert diff.worse is not None and diff.better is not None
        return {
            "rate": round((diff.worse + diff.better) / diff.n, 6),
            "items": diff.n,
            "previous_evaluation_id": ((previous or {}).get("source") or {}).get("evaluation_id"),
        }

    def save(self) -> None:
        """Write the file atomically with sorted entries, so diffs in review stay small."""
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
        tmp.write_text(render(data), encoding="utf-8")
        os.replace(tmp, self.path)


def render(data: dict[str, Any]) -> str:
    """The file's text: indented JSON, with each per-item outcome block on one line.

    Blocks on one line keep the file short and a review diff readable: a changed item changes
    the one line of its block.
    """
    nonce = secrets.token_hex(8)
    compact: dict[str, str] = {}

    def stand_in(value: Any) -> Any:
        if isinstance(value, dict):
            if "outcomes" in value and ("ids" in value or "prefix" in value):
                token = f"{nonce}-{len(compact)}"
                compact[token] = json.dumps(value, separators=(", ", ": "))
                return token
            return {k: stand_in(v) for k, v in value.items()}
        if isinstance(value, list):
            return [stand_in(v) for v in value]
        return value

    text = json.dumps(stand_in(data), indent=2)
    for token, block in compact.items():
        text = text.replace(f'"{token}"', block, 1)
    return text + "\n"


def stored_value(entry: dict[str, Any], metric: str) -> float | None:
    """A stored entry's value for `metric` (exact name first, then blind match)."""
    found = _stored_figure(entry, metric)
    if isinstance(found, dict):
        found = found.get("value")
    return float(found) if isinstance(found, int | float) and not isinstance(found, bool) else None


def stored_stderr(entry: dict[str, Any], metric: str) -> float | None:
    """A stored entry's standard error of `metric`, None when it has none."""
    found = _stored_figure(entry, metric)
    stderr = found.get("stderr") if isinstance(found, dict) else None
    return float(stderr) if isinstance(stderr, int | float) else None


def stored_metric(entry: dict[str, Any], metric: str | None) -> str | None:
    """The metric a gate means on a stored entry: `metric`, else the entry's judged one."""
    if metric is not None:
        return metric
    named = entry.get("metric")
    if isinstance(named, str):
        return named
    metrics = entry.get("metrics") or {}
    return next(iter(metrics)) if len(metrics) == 1 else None


def is_proportion(entry: dict[str, Any], metric: str) -> bool:
    """Whether a stored entry's metric is a proportion (declared, else known by name)."""
    declared = entry.get("proportions")
    if isinstance(declared, list):
        return metric_key(metric) in {metric_key(p) for p in declared}
    return metric_key(metric) in KNOWN_PROPORTIONS


def _stored_figure(entry: dict[str, Any], metric: str) -> Any:
    metrics = entry.get("metrics") or {}
    found = metrics.get(metric)
    if found is None:
        found = next((v for k, v in metrics.items() if metric_key(k) == metric_key(metric)), None)
    return found


def _figure(value: float, stderr: float | None) -> dict[str, float]:
    return {"value": value} if stderr is None else {"value": value, "stderr": stderr}


def is_live(entry: Any) -> bool:
    """Whether an entry names a job or evaluation to compare against live."""
    return (
        isinstance(entry, dict)
        and ("job_id" in entry or "evaluation_id" in entry)
        and "metrics" not in entry
    )


# --- validation --------------------------------------------------------------------------


def _unknown(found: dict[str, Any], allowed: tuple[str, ...]) -> str:
    """`unknown key(s) 'x', 'y'` for keys outside `allowed` (a typo is refused, not ignored)."""
    extra = sorted(set(found) - set(allowed))
    return f"unknown key(s) {', '.join(map(repr, extra))}" if extra else ""


def _fail(file: Path, name: str, problem: str) -> BaselineError:
    return BaselineError(f"baseline {file}: entry {name!r}: {problem}")


def _check_live(file: Path, name: str, entry: Any) -> None:
    if not is_live(entry):
        raise _fail(
            file,
            name,
            'must be stored figures {"metrics": {…}} or name a live source '
            '{"evaluation_id": "eval_…"} / {"job_id": "job_…"}'
            if name != "default"
            else 'must be {"job_id": "job_…"} or {"evaluation_id": "eval_…"}',
        )
    unknown = _unknown(entry, _LIVE_KEYS)
    if unknown:
        raise _fail(file, name, f"{unknown} in a live entry; its keys are {', '.join(_LIVE_KEYS)}")
    for key in _LIVE_KEYS:
        value = entry.get(key)
        if value is not None and not (isinstance(value, str) and (value or key == "checkpoint_id")):
            raise _fail(file, name, f"{key} must be a non-empty string, got {value!r}")


def _check_entry(file: Path, name: str, entry: Any) -> ItemOutcomes | None:
    """Validate one entry; returns its decoded per-item outcomes, if it stores any."""
    if is_live(entry):
        _check_live(file, name, entry)
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("metrics"), dict):
        _check_live(file, name, entry)  # raises with the two accepted shapes
    unknown = _unknown(entry, _STORED_KEYS)
    if unknown:
        raise _fail(file, name, f"{unknown}; a stored entry's keys are {', '.join(_STORED_KEYS)}")
    metrics = entry["metrics"]
    if not metrics:
        raise _fail(file, name, f"'metrics' is empty; {REBLESS}")
    declared = entry.get("proportions")
    if declared is not None and not (
        isinstance(declared, list) and all(isinstance(p, str) for p in declared)
    ):
        raise _fail(file, name, f"'proportions' must be a list of metric names, got {declared!r}")
    for metric, figure in metrics.items():
        value = figure.get("value") if isinstance(figure, dict) else figure
        if isinstance(figure, dict):
            extra = sorted(set(figure) - {"value", "stderr"})
            if extra or "value" not in figure:
                raise _fail(
                    file,
                    name,
                    f'metric {metric!r} must be a number or {{"value": …, "stderr": …}}, '
                    f"got {json.dumps(figure)}",
                )
            _check_number(file, name, f"stderr of {metric!r}", figure.get("stderr"), low=0.0)
        number = _check_number(file, name, f"metric {metric!r}", value, required=True)
        assert number is not None
        if is_proportion(entry, metric) and not 0.0 <= number <= 1.0:
            hint = (
                f"did you mean {number / 100:g}?"
                if 1.0 < number <= 100.0
                else "write it as a share of items"
            )
            raise _fail(
                file,
                name,
                f"metric {metric!r} is a proportion and must lie in [0, 1], got {value!r}; {hint}",
            )
    judged = entry.get("metric")
    if judged is not None and not (
        isinstance(judged, str) and stored_value(entry, judged) is not None
    ):
        raise _fail(file, name, f"'metric' {judged!r} is not one of its metrics {sorted(metrics)}")
    n = entry.get("num_samples")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        fix = f"write the number {n}" if isinstance(n, str) and n.isdigit() else "or null"
        raise _fail(file, name, f"num_samples must be an integer >= 1, got {n!r}; {fix}")
    discordance = entry.get("discordance")
    if discordance is not None:
        raw = discordance.get("rate") if isinstance(discordance, dict) else None
        rate = _check_number(file, name, "discordance rate", raw, required=True, low=0.0)
        if rate is not None and rate > 1.0:
            raise _fail(file, name, f"discordance rate must lie in [0, 1], got {rate!r}; {REBLESS}")
    for part in ("spec", "source"):
        if part in entry and not isinstance(entry[part], dict):
            raise _fail(file, name, f"'{part}' must be an object; {REBLESS}")
    if "items" not in entry:
        return None
    try:
        return decode_items(entry["items"])
    except ValueError as exc:
        raise _fail(
            file,
            name,
            f"per-item outcomes: {exc}; {REBLESS}, or delete its 'items' (the gate then "
            "compares unpaired)",
        ) from None


def _check_number(
    file: Path,
    name: str,
    what: str,
    value: Any,
    *,
    required: bool = False,
    low: float | None = None,
) -> float | None:
    """The value as a float; refuses a string, bool, non-finite or too-small value in one line."""
    if value is None and not required:
        return None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise _fail(file, name, f"{what} is the string {value!r}; write a number") from None
        raise _fail(
            file, name, f'{what} is the string "{value}"; write the number {number:g} (no quotes)'
        )
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(file, name, f"{what} must be a finite number, got {json.dumps(value)}")
    if low is not None and value < low:
        raise _fail(file, name, f"{what} must be >= {low:g}, got {value!r}")
    return float(value)


# --- per-item outcomes -------------------------------------------------------------------


def encode_items(outcomes: ItemOutcomes, metric: str | None) -> dict[str, Any]:
    """Per-item outcomes as compact, reviewable blocks.

    Items are grouped by cluster; ids that share a prefix and run through consecutive integers
    (`abstract_algebra/0` … `abstract_algebra/99`, `HumanEval/0` …, the line numbers of a custom
    dataset) become one range block `{"prefix", "first", "count"}`, any others a block listing
    its `ids`. A block's `outcomes` is a string of 0/1 (binary outcomes) or a list of numbers,
    in id order. 14,042 MMLU items in 57 subjects take about 22 KB.
    """
    binary = outcomes.binary

    def order(item: str) -> tuple[str, str, int, str]:
        found = _NUMBERED.fullmatch(item)
        cluster = outcomes.clusters.get(item, "")
        if found is None:
            return (cluster, item, -1, item)
        return (cluster, found.group(1), int(found.group(2)), item)

    blocks: list[dict[str, Any]] = []
    loose: list[str] = []

    def flush_loose() -> None:
        if loose:
            blocks.append(_block({"ids": list(loose)}, loose, outcomes, binary))
            loose.clear()

    keys = sorted(outcomes.scores, key=order)
    i = 0
    while i < len(keys):
        cluster, prefix, number, _ = order(keys[i])
        j = i
        while number >= 0 and j + 1 < len(keys):
            nxt = order(keys[j + 1])
            if nxt[:2] != (cluster, prefix) or nxt[2] != number + (j + 1 - i):
                break
            j += 1
        if j > i:
            if loose and outcomes.clusters.get(loose[0], "") != cluster:
                flush_loose()
            flush_loose()
            run = keys[i : j + 1]
            blocks.append(
                _block(
                    {"prefix": prefix, "first": number, "count": len(run)}, run, outcomes, binary
                )
            )
        else:
            if loose and outcomes.clusters.get(loose[0], "") != cluster:
                flush_loose()
            loose.append(keys[i])
        i = j + 1
    flush_loose()
    out: dict[str, Any] = {"n": outcomes.n, "blocks": blocks}
    if metric is not None:
        out = {"metric": metric, **out}
    return out


def _block(
    head: dict[str, Any], ids: list[str], outcomes: ItemOutcomes, binary: bool
) -> dict[str, Any]:
    cluster = outcomes.clusters.get(ids[0])
    if cluster is not None:
        head["cluster"] = cluster
    scores = [outcomes.scores[i] for i in ids]
    head["outcomes"] = "".join("1" if s == 1.0 else "0" for s in scores) if binary else scores
    return head


def decode_items(block: Any) -> ItemOutcomes:
    """The per-item outcomes `encode_items` wrote; ValueError says what is malformed."""
    if not isinstance(block, dict) or not isinstance(block.get("blocks"), list):
        raise ValueError('expected {"metric": …, "n": …, "blocks": [...]}')
    unknown = _unknown(block, ("metric", "n", "blocks"))
    if unknown:
        raise ValueError(unknown)
    if "metric" in block and not isinstance(block["metric"], str):
        raise ValueError("'metric' must be a metric name")
    scores: dict[str, float] = {}
    clusters: dict[str, str] = {}
    for index, part in enumerate(block["blocks"]):
        where = f"block {index}"
        if not isinstance(part, dict):
            raise ValueError(f"{where} must be an object")
        ids = _block_ids(part, where)
        values = _block_outcomes(part.get("outcomes"), where)
        if len(values) != len(ids):
            raise ValueError(f"{where} has {len(ids)} ids but {len(values)} outcomes")
        cluster = part.get("cluster")
        if cluster is not None and not isinstance(cluster, str):
            raise ValueError(f"{where}: 'cluster' must be a string")
        for item, value in zip(ids, values, strict=True):
            if item in scores:
                raise ValueError(f"{where}: item {item!r} appears twice")
            scores[item] = value
            if cluster is not None:
                clusters[item] = cluster
    n = block.get("n")
    if n is not None and n != len(scores):
        raise ValueError(f"'n' says {n!r} items but the blocks hold {len(scores)}")
    return ItemOutcomes(scores, clusters)


def _block_ids(part: dict[str, Any], where: str) -> list[str]:
    unknown = _unknown(part, ("ids", "prefix", "first", "count", "cluster", "outcomes"))
    if unknown:
        raise ValueError(f"{where}: {unknown}")
    if "ids" in part:
        ids = part["ids"]
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            raise ValueError(f"{where}: 'ids' must be a list of non-empty strings")
        return ids
    prefix, first, count = part.get("prefix"), part.get("first"), part.get("count")
    if not isinstance(prefix, str) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in (first, count)
    ):
        raise ValueError(f"{where} needs 'ids', or 'prefix' (a string) with 'first' and 'count'")
    assert isinstance(first, int) and isinstance(count, int)
    if first < 0 or count < 1:
        raise ValueError(f"{where}: 'first' must be >= 0 and 'count' >= 1")
    return [f"{prefix}{k}" for k in range(first, first + count)]


def _block_outcomes(outcomes: Any, where: str) -> list[float]:
    if isinstance(outcomes, str):
        if outcomes.strip("01"):
            raise ValueError(f"{where}: an outcome string holds only 0 and 1")
        return [1.0 if c == "1" else 0.0 for c in outcomes]
    if isinstance(outcomes, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and 0.0 <= v <= 1.0 for v in outcomes
    ):
        return [float(v) for v in outcomes]
    raise ValueError(f"{where}: 'outcomes' must be a string of 0/1 or a list of numbers in [0, 1]")


# --- the bless diff ----------------------------------------------------------------------


def _change(name: str, previous: dict[str, Any] | None, entry: dict[str, Any], note: str) -> str:
    """One line: what blessing did to an entry (old -> new value of its judged metric)."""
    metric = entry.get("metric") or next(iter(entry["metrics"]))
    new = stored_value(entry, metric)
    items = entry.get("items")
    tail = (
        f", {items['n']} per-item outcomes"
        if items
        else (f"; no per-item outcomes: {note}" if note else "")
    )
    now = f"{metric} {new:.4f} (n={entry.get('num_samples') or '?'}{tail})"
    if previous is None:
        return f"+ {name}: new, {now}"
    if is_live(previous):
        source = previous.get("evaluation_id") or f"job {previous.get('job_id')}"
        return f"~ {name}: live {source} -> {now}"
    old = stored_value(previous, metric)
    if old is None:
        return f"~ {name}: {metric} new in this entry, {now}"
    change = "unchanged" if old == new else f"{old:.4f} -> {new:.4f} ({(new or 0) - old:+.4f})"
    discordance = entry.get("discordance")
    fresh = discordance is not None and discordance is not previous.get("discordance")
    rate = float(discordance["rate"]) if fresh and discordance is not None else 0.0
    if rate:
        change += f", {rate:.1%} of items changed"
    symbol = "=" if old == new and not rate else "~"
    return f"{symbol} {name}: {metric} {change} (n={entry.get('num_samples') or '?'}{tail})"
