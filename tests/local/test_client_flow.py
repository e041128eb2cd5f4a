"""scaimind_nb.Client against the embedded coordinator: the end-to-end path users take."""

from __future__ import annotations

import logging

import pytest

from scaimind_local import LocalCoordinator
from scaimind_local.testing import write_custom_dataset, write_model
from scaimind_nb import Client, Status

ROWS = [{"prompt": f"q{i}", "reference": f"a{i}"} for i in range(8)]


def test_client_sees_queued_running_completed_with_the_exact_score(
    coordinator: LocalCoordinator, unique: str
) -> None:
    answers = {f"q{i}": f"a{i}" for i in range(6)}  # 6 of 8 right
    model = write_model(
        coordinator.drive_root,
        f"org/models/c-{unique}",
        options={"answers": answers, "delay": 0.05},
    )
    dataset = write_custom_dataset(coordinator.drive_root, f"org/eval/c-{unique}.jsonl", ROWS)
    coordinator.register_job(f"job_c_{unique}", model)
    seen: list[Status] = []
    with Client(coordinator.url, coordinator.api_key) as client:
        submitted = client.submit(
            f"job_c_{unique}", model, [{"name": "custom-c", "dataset": dataset}]
        )
        assert submitted.status == Status.QUEUED
        final = client.wait(
            submitted.evaluation_id,
            timeout=30,
            poll_interval=0.02,
            on_update=lambda ev: seen.append(ev.status),
        )
    assert Status.RUNNING in seen
    assert final.status == Status.COMPLETED
    assert final.score("custom-c") == 0.75
    result = final.result("custom-c")
    assert result.num_samples == 8
    assert result.metrics == {"exact_match": 0.75}


def test_the_key_never_shows_in_output_or_logs(
    scored_setup, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    coord, job_id, model_uri, benchmark, expected = scored_setup
    caplog.set_level(logging.DEBUG)
    with Client(coord.url, coord.api_key) as client:
        ev = client.wait(client.submit(job_id, model_uri, [benchmark]).evaluation_id, timeout=30)
        assert ev.score(benchmark["name"]) == expected
        page = client.list_evaluations(page_size=5)
        assert coord.api_key not in repr(page) + repr(ev) + repr(client) + repr(coord)
        with pytest.raises(Exception) as info:
            client.submit(job_id + "_missing", model_uri, [benchmark])
        assert coord.api_key not in str(info.value) + repr(info.value)
    out, err = capfd.readouterr()
    assert coord.api_key not in out + err + caplog.text
