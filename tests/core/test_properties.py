"""Property tests: random camelCase/snake_case, default-omitting, enum- and int64-varying renderings of
generated evaluations all normalise to the same Evaluation, carrying the generated values."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

from scaimind_nb import ScaimindKeyError, Status, metric_key, parse_evaluation

STATUS_NUMBER = {
    "PENDING": 0,
    "RUNNING": 1,
    "COMPLETED": 2,
    "FAILED": 3,
    "CANCELLED": 4,
    "QUEUED": 5,
}

metric_names = st.from_regex(r"[a-z][a-z0-9]{0,5}(_[a-z0-9]{1,4}){0,2}", fullmatch=True).filter(
    lambda n: "_stderr" not in n
)
values = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**6), 10**6).map(float)


@st.composite
def results(draw: Any) -> dict[str, Any]:
    """A result: metrics, maybe a score field, maybe the name of the primary metric."""
    metrics = draw(st.dictionaries(metric_names, values, max_size=4))
    return {
        "metrics": metrics,
        "score": draw(st.none() | values),
        "primary": draw(st.none() | st.sampled_from(sorted(metrics) or [None])),
        "num_samples": draw(st.integers(0, 2**62)),
    }


def expected_metrics(want: dict[str, Any]) -> dict[str, float]:
    """The one score rule's view: a non-zero score field is the named metric, or ``score``."""
    metrics = dict(want["metrics"])
    if want["score"]:
        named = want["primary"] or "score"
        if not any(metric_key(m) == metric_key(named) for m in metrics):
            metrics[named] = want["score"]
    return metrics


evaluations = st.fixed_dictionaries(
    {
        "evaluation_id": st.from_regex(r"eval_[a-z0-9]{1,8}", fullmatch=True),
        "job_id": st.from_regex(r"job_[a-z0-9]{1,8}", fullmatch=True),
        "model_uri": st.just("scaidrive://org/m"),
        "checkpoint_id": st.sampled_from(["", "step-1", "final"]),
        "status": st.sampled_from(sorted(STATUS_NUMBER)),
        "error": st.none() | st.text(min_size=1, max_size=20),
        "results": st.dictionaries(
            st.sampled_from(["mmlu", "humaneval", "arc_challenge", "custom-qa"]),
            results(),
            max_size=3,
        ),
    }
)


def camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def render(ev: dict[str, Any], draw: Any) -> dict[str, Any]:
    """One random but faithful coordinator rendering of ``ev``."""
    style = draw(st.sampled_from([camel, str]))

    def key(k: str) -> str:
        return style(k) if draw(st.booleans()) else k

    def number(v: float) -> Any:
        return int(v) if v.is_integer() and abs(v) < 2**53 and draw(st.booleans()) else v

    def int64(v: int) -> Any:
        return str(v) if draw(st.booleans()) or v >= 2**53 else v

    def status(name: str) -> Any:
        return draw(
            st.sampled_from(
                [
                    name,
                    name.lower(),
                    "EVALUATION_STATUS_" + name,
                    "STATUS_" + name,
                    STATUS_NUMBER[name],
                ]
            )
        )

    def maybe(out: dict[str, Any], k: str, v: Any, default: Any) -> None:
        if v != default or draw(st.booleans()):
            out[key(k)] = v

    out: dict[str, Any] = {
        key("evaluation_id"): ev["evaluation_id"],
        key("job_id"): ev["job_id"],
        key("model_uri"): ev["model_uri"],
    }
    maybe(out, "checkpoint_id", ev["checkpoint_id"], "")
    if ev["status"] != "PENDING" or draw(st.booleans()):
        out[key("status")] = status(ev["status"])
    if ev["error"] is not None:
        out[key("error")] = draw(
            st.sampled_from(
                [ev["error"], {"message": ev["error"]}, {"code": 13, "message": ev["error"]}]
            )
        )
    elif draw(st.booleans()):
        out[key("error")] = None
    rendered = []
    for name, r in ev["results"].items():
        item: dict[str, Any] = {}
        metrics = {m: number(v) for m, v in r["metrics"].items()}
        if draw(st.booleans()):
            item[key("metrics")] = metrics
        else:
            item[key("metrics")] = [
                {"name": m, "value": v} if v != 0 or draw(st.booleans()) else {"name": m}
                for m, v in metrics.items()
            ]
        if r["score"] is not None:
            maybe(item, "score", number(r["score"]), 0)
        if r["primary"] is not None:
            item[key("primary_metric")] = r["primary"]
        maybe(item, "num_samples", int64(r["num_samples"]), 0)
        rendered.append((name, item))
    as_map = draw(st.booleans())
    if as_map:
        out[key("results")] = {name: item for name, item in rendered}
    elif rendered or draw(st.booleans()):
        name_key = draw(st.sampled_from(["benchmark", "name", "benchmark_name", "benchmarkName"]))
        out[draw(st.sampled_from([key("results"), key("benchmark_results")]))] = [
            {name_key: n, **item} for n, item in rendered
        ]
    return {"data": out} if draw(st.booleans()) else out


@settings(max_examples=100, deadline=None)
@given(ev=evaluations, data=st.data())
def test_random_renderings_normalise_to_one_evaluation(
    ev: dict[str, Any], data: st.DataObject
) -> None:
    a = parse_evaluation(render(ev, data.draw))
    b = parse_evaluation(render(ev, data.draw))
    assert a == b
    assert a.evaluation_id == ev["evaluation_id"] and a.job_id == ev["job_id"]
    assert a.checkpoint_id == ev["checkpoint_id"]
    assert a.status is Status(ev["status"])
    assert a.error == ev["error"]
    assert [r.benchmark for r in a.results] == list(ev["results"])
    for r in a.results:
        want = ev["results"][r.benchmark]
        metrics = expected_metrics(want)
        assert r.metrics == metrics
        assert r.num_samples == (want["num_samples"] or None)
        if not metrics:
            with pytest.raises(ScaimindKeyError, match="no metrics"):
                _ = r.score
        elif want["primary"] is not None:
            assert r.score == metrics[want["primary"]]
        elif want["score"]:
            assert r.score == metrics[r.primary_metric] and metric_key(r.primary_metric) == "score"
