"""Faults on the wire: a gate session, a notebook evaluate() and 20 waits through the fault proxy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ._faultproxy import Fault, FaultProxy, ScriptedPlan
from ._harness import dump, evaluations_per_job, scored_model, wire_scenario


@pytest.mark.slow
def test_every_session_survives_wire_faults_without_duplicates(
    fresh_coordinator: object, tmp_path: Path
) -> None:
    figures = wire_scenario(fresh_coordinator, tmp_path, waits=20, seed=3, rate=0.3)
    print(dump(figures))
    assert figures.wrong == []
    assert figures.survived == figures.sessions == 22
    assert figures.duplicates == 0
    assert figures.lost == 0
    assert sum(figures.faults.values()) >= 20, "the proxy must actually have injected faults"
    assert {"reset_after", "garbage", "stall", "throttle"} <= set(figures.faults)


@pytest.mark.parametrize("kind", ["garbage", "reset_after", "truncate", "stall"])
def test_ambiguous_submit_failure_creates_exactly_one_evaluation(
    fresh_coordinator: Any, kind: str
) -> None:
    """Regression: a garbled 2xx answer to the POST used to raise ProtocolError after it took effect."""
    import scaimind_nb

    model_uri, benchmark = scored_model(fresh_coordinator.drive_root, tag="-amb")
    fresh_coordinator.register_job("job_amb", model_uri)
    posts = ScriptedPlan([Fault(kind, seconds=2)], match=lambda r: r.method == "POST")
    with (
        FaultProxy(fresh_coordinator.url, posts) as proxy,
        scaimind_nb.Client(proxy.url, fresh_coordinator.api_key, timeout=1.0) as client,
    ):
        submitted = client.submit("job_amb", model_uri, [benchmark])
        final = client.wait(submitted.evaluation_id, timeout=30, poll_interval=0.05)
    assert proxy.counts[kind] == 1
    assert final.status.value == "COMPLETED"
    assert evaluations_per_job(fresh_coordinator.db_path)["job_amb"] == 1


def test_garbled_answer_to_a_get_is_retried(fresh_coordinator: Any) -> None:
    import scaimind_nb

    gets = ScriptedPlan([Fault("garbage")], match=lambda r: r.method == "GET")
    with (
        FaultProxy(fresh_coordinator.url, gets) as proxy,
        scaimind_nb.Client(proxy.url, fresh_coordinator.api_key) as client,
    ):
        assert client.list_evaluations().evaluations == []
    assert proxy.counts["garbage"] == 1
