"""The magics in an in-process IPython shell against a real coordinator on loopback."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from scaimind_nb import EvaluationRun, Status


def _evaluate_line(setup: Any, extra: str = "") -> str:
    bench = setup.benchmark
    return f"evaluate {setup.job_id} --model {setup.model_uri} {bench['name']}@{bench['dataset']} {extra}"


def _usage_error(ip: Any, line: str) -> str:
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("scaimind", line)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message
    return message


def test_load_ext_registers_once_and_import_registers_nothing(ip: Any) -> None:
    import scaimind_nb

    assert "scaimind" in ip.magics_manager.magics["line"]
    assert "scaimind" in ip.magics_manager.magics["cell"]
    assert any(type(c).__name__ == "ScaimindMagics" for c in ip.configurables)
    ip.extension_manager.unload_extension("scaimind_nb")
    assert "scaimind" not in ip.magics_manager.magics["line"]
    assert not any(type(c).__name__ == "ScaimindMagics" for c in ip.configurables)
    scaimind_nb.__dict__.get("evaluate")  # importing and touching the package registers nothing
    assert "scaimind" not in ip.magics_manager.magics["line"]
    ip.run_line_magic("load_ext", "scaimind_nb")
    ip.run_line_magic("reload_ext", "scaimind_nb")
    assert sum(type(c).__name__ == "ScaimindMagics" for c in ip.configurables) == 1
    assert "scaimind" in ip.magics_manager.magics["line"]


def test_magic_help_lists_one_usage_line_per_command(ip: Any) -> None:
    doc = ip.find_line_magic("scaimind").__doc__
    lines = doc.splitlines()
    for command in ("evaluate", "get", "wait", "list", "compare", "diff", "samples", "doctor"):
        assert any(line.startswith(f"  %scaimind {command}") for line in lines), command
    assert "{evaluate,get" not in doc  # no raw argparse choice list
    assert "%scaimind COMMAND -h" in doc
    with capture_output() as captured:
        ip.run_line_magic("pinfo", "%scaimind")
    assert "%scaimind evaluate" in captured.stdout + str(captured.outputs)


def test_command_help_prints_and_returns_nothing(ip: Any, capsys: Any) -> None:
    assert ip.run_line_magic("scaimind", "evaluate -h") is None
    out = capsys.readouterr().out
    assert "usage: %scaimind evaluate" in out and "--checkpoint ID" in out and "--timeout S" in out
    assert ip.run_line_magic("scaimind", "list --help") is None
    assert "--page-size N" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "the following arguments are required: COMMAND"),
        ("evaluate job_1 mmlu", "the following arguments are required: --model"),
        ("evaluate job_1 --model m mmlu:abc", "benchmark 'mmlu:abc': write name, name:num_samples"),
        ("evaluate job_1 --model m custom-qa", "benchmark 'custom-qa' needs a dataset"),
        ("evaluate job_1 --model m mmlu:0", "num_samples must be an integer >= 1"),
        ("evaluate job_1 --model m mmlu --timeout -1", "timeout must be a finite number"),
        ("frobnicate", "invalid choice: 'frobnicate'"),
        ("list --limit 0", "--limit must be a positive number"),
        ("list --page-size 0", "page_size must be an integer from 1 to 1000"),
        ("submit df", "use %%scaimind submit [VAR]"),
        ("compare a b --confidence 2", "confidence must lie strictly between 0 and 1"),
    ],
)
def test_bad_line_input_is_a_one_line_usage_error(ip: Any, line: str, message: str) -> None:
    assert message in _usage_error(ip, line)


def test_server_refusals_are_one_line_usage_errors(ip: Any, scored_setup: Any) -> None:
    typo = _usage_error(ip, f"evaluate {scored_setup.job_id} --model {scored_setup.model_uri} mmlx")
    assert typo.startswith("the coordinator refused it (HTTP 400): unknown benchmark 'mmlx'")
    assert "custom-*, humaneval, mmlu" in typo
    unknown_job = _usage_error(ip, f"evaluate job_nope --model {scored_setup.model_uri} mmlu")
    assert "job 'job_nope' not found" in unknown_job and "(HTTP 404)" in unknown_job
    missing = _usage_error(ip, "get eval_does_not_exist")
    assert "evaluation 'eval_does_not_exist' not found (HTTP 404)" in missing
    assert "%scaimind list" in missing
    page = _usage_error(ip, "list --page-size 500")
    assert "(HTTP 400): page_size must be an integer from 1 to 100" in page


def test_a_timeout_is_one_line_and_the_variable_keeps_the_run(ip: Any, slow_model: Any) -> None:
    bench = slow_model.benchmark
    line = (
        f"evaluate {slow_model.job_id} --model {slow_model.model_uri} "
        f"{bench['name']}@{bench['dataset']} --timeout 0.5"
    )
    with capture_output() as captured:
        result = ip.run_cell(f"run = %scaimind {line}")
    assert isinstance(result.error_in_exec, UsageError)
    message = str(result.error_in_exec)
    assert "is not finished after" in message and "it keeps running: %scaimind wait" in message
    assert message.endswith("`run` holds its handle") and "\n" not in message
    assert "Traceback" not in captured.stdout + captured.stderr
    run = ip.user_ns["run"]
    assert isinstance(run, EvaluationRun) and not run.done
    run.cancel()
    assert run.wait(timeout=60).status is Status.CANCELLED


def test_unreachable_coordinator_is_one_line(ip: Any) -> None:
    ip.run_line_magic("config", "ScaimindMagics.host = 'http://127.0.0.1:9'")
    message = _usage_error(ip, "get eval_1")
    assert message.startswith("cannot reach the coordinator:") and "SCAIGRID_HOST" in message


def test_config_settings_are_validated_and_applied(
    ip: Any, nb_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ip.run_line_magic("config", "ScaimindMagics.progress = 'HTML'")
    ip.run_line_magic("config", "ScaimindMagics.display_limit = 3")
    ip.run_line_magic("config", "ScaimindMagics.host = 'http://127.0.0.1:9'")
    ip.run_line_magic("config", "ScaimindMagics.max_poll_interval = 2.5")
    assert (nb_settings.progress, nb_settings.display_limit) == ("html", 3)
    assert (nb_settings.host, nb_settings.max_poll_interval) == ("http://127.0.0.1:9", 2.5)
    # %config reports invalid values as errors and keeps the previous value
    ip.run_line_magic("config", "ScaimindMagics.progress = 'bars'")
    ip.run_line_magic("config", "ScaimindMagics.poll_interval = 0")
    assert "expected any of ['auto', 'widget', 'html', 'text', 'off']" in caplog.text
    assert "poll_interval must be > 0 seconds" in caplog.text
    assert (nb_settings.progress, nb_settings.poll_interval) == ("html", 0.2)


def test_evaluate_blocks_and_returns_the_run(ip: Any, scored_setup: Any, capsys: Any) -> None:
    run = ip.run_line_magic("scaimind", _evaluate_line(scored_setup, "--checkpoint step-7"))
    assert isinstance(run, EvaluationRun)
    assert run.evaluation.status is Status.COMPLETED
    assert run.score(scored_setup.benchmark["name"]) == scored_setup.expected_score
    out = capsys.readouterr().out
    assert f"[scaimind] step-7  {run.evaluation_id}  COMPLETED" in out  # text mode outside a kernel
    frame = run.to_frame()
    assert frame["value"].dtype == "float64" and frame["value"].tolist()[0] == 0.75


def test_no_wait_then_wait_get_and_compare(ip: Any, scored_setup: Any) -> None:
    run = ip.run_line_magic("scaimind", _evaluate_line(scored_setup, "--no-wait"))
    assert isinstance(run, EvaluationRun)
    waited = ip.run_line_magic("scaimind", f"wait {run.evaluation_id} --timeout 60")
    assert waited.evaluation.status is Status.COMPLETED
    evaluation = ip.run_line_magic("scaimind", f"get {run.evaluation_id}")
    assert evaluation.evaluation_id == run.evaluation_id and evaluation.results
    other = ip.run_line_magic("scaimind", _evaluate_line(scored_setup))
    ids = f"{run.evaluation_id} {other.evaluation_id}"
    table = ip.run_line_magic("scaimind", f"compare {ids}")
    assert table.shape == (1, 2)
    stats = table.stats.set_index("evaluation_id")
    assert stats.at[other.evaluation_id, "delta"] == 0.0
    assert bool(stats.at[other.evaluation_id, "paired"])  # the samples route pairs them
    assert stats.at[run.evaluation_id, "n"] == 4
    unknown = _usage_error(ip, f"compare {ids} --metric nonexistent")
    assert unknown == "no result has a metric 'nonexistent'; available: exact_match"
    assert "is not one of the compared ids" in _usage_error(ip, f"compare {ids} --baseline x")


def test_list_reads_model_checkpoint_status_reason_and_scores(
    ip: Any, scored_setup: Any, coordinator: Any, unique: str
) -> None:
    from scaimind_local.testing import write_custom_dataset, write_model

    good = ip.run_line_magic("scaimind", _evaluate_line(scored_setup, "--checkpoint step-9"))
    uri = write_model(coordinator.drive_root, f"org/models/bad-{unique}", options={"fail": "OOM"})
    dataset = write_custom_dataset(
        coordinator.drive_root, f"org/eval/bad-{unique}.jsonl", [{"prompt": "a", "reference": "b"}]
    )
    coordinator.register_job(f"job_bad_{unique}", uri)
    bad = ip.run_line_magic(
        "scaimind", f"evaluate job_bad_{unique} --model {uri} custom-bad-{unique}@{dataset}"
    )
    ip.run_line_magic("config", "ScaimindMagics.display_limit = 1")
    listed = ip.run_line_magic("scaimind", "list --limit 3 --page-size 2")
    assert len(listed) == 3 and "Showing 1 of 3 rows" in repr(listed)
    rows = listed.set_index("evaluation_id")
    assert rows.at[good.evaluation_id, "model_uri"] == scored_setup.model_uri
    assert rows.at[good.evaluation_id, "checkpoint_id"] == "step-9"
    assert rows.at[good.evaluation_id, f"score:{scored_setup.benchmark['name']}"] == 0.75
    assert str(rows.at[bad.evaluation_id, "status"]) == "FAILED"
    assert "OOM" in rows.at[bad.evaluation_id, "error"]
    assert str(listed["created_at"].dtype) == "datetime64[ns, UTC]"
    assert str(listed["status"].dtype) == "category"


def test_diff_and_samples_magics(ip: Any, checkpoints: Any) -> None:
    bench = checkpoints.benchmark
    ids = []
    for step, uri in checkpoints.models.items():
        run = ip.run_line_magic(
            "scaimind",
            f"evaluate {checkpoints.job_id} --model {uri} --checkpoint {step} "
            f"{bench['name']}@{bench['dataset']}",
        )
        ids.append(run.evaluation_id)
    changed = ip.run_line_magic("scaimind", f"diff {ids[0]} {ids[1]}")
    assert sorted(changed["item_id"]) == ["1", "2", "5", "6", "7", "8", "9"]
    items = ip.run_line_magic("scaimind", f"samples {ids[0]} --benchmark {bench['name']}")
    assert len(items) == 9 and items["correct"].sum() == 4


def test_cell_submit_stores_the_frame_silently(ip: Any, scored_setup: Any) -> None:
    body = json.dumps(
        {
            "job_id": scored_setup.job_id,
            "model_uri": scored_setup.model_uri,
            "checkpoint_id": "step-1",
            "benchmarks": [scored_setup.benchmark],
        }
    )
    assert ip.run_cell_magic("scaimind", "submit df", body) is None
    df = ip.user_ns["df"]
    assert isinstance(df, pd.DataFrame)
    exact = df[df["metric"] == "exact_match"]
    assert exact["value"].tolist() == [0.75] and exact["checkpoint_id"].tolist() == ["step-1"]
    # the same request as YAML
    yaml_body = (
        f"job_id: {scored_setup.job_id}\nmodel_uri: {scored_setup.model_uri}\n"
        f"benchmarks:\n  - name: {scored_setup.benchmark['name']}\n"
        f"    dataset: {scored_setup.benchmark['dataset']}\n"
    )
    run = ip.run_cell_magic("scaimind", "submit", yaml_body)
    assert isinstance(run, EvaluationRun) and run.evaluation.status is Status.COMPLETED


@pytest.mark.parametrize(
    ("line", "body", "message"),
    [
        ("submit", "\n", "needs a body"),
        ("submit", "{job_id: [", "neither JSON nor YAML"),
        (
            "submit",
            '{"job_id": "j", "model_uri": "m", "benchmarks": ["mmlu"], "x": 1}',
            "unknown key(s) x",
        ),
        ("submit", '{"job_id": "j", "benchmarks": ["mmlu"]}', "the body is missing model_uri"),
        (
            "submit 2df",
            '{"job_id": "j", "model_uri": "m", "benchmarks": ["mmlu"]}',
            "not a valid variable",
        ),
        ("get eval_1", "x", "only submit is a cell magic"),
    ],
)
def test_bad_cell_input_is_a_usage_error(ip: Any, line: str, body: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        ip.run_cell_magic("scaimind", line, body)
    assert message in str(info.value)


def test_failed_submit_stores_the_run_and_says_why(
    ip: Any, coordinator: Any, unique: str, capsys: Any
) -> None:
    from scaimind_local.testing import write_custom_dataset, write_model

    uri = write_model(
        coordinator.drive_root, f"org/models/broken-{unique}", options={"fail": "CUDA on fire"}
    )
    ds = write_custom_dataset(
        coordinator.drive_root, f"org/eval/b-{unique}.jsonl", [{"prompt": "a", "reference": "b"}]
    )
    coordinator.register_job(f"job_b_{unique}", uri)
    body = json.dumps(
        {
            "job_id": f"job_b_{unique}",
            "model_uri": uri,
            "benchmarks": [{"name": f"custom-b-{unique}", "dataset": ds}],
        }
    )
    assert ip.run_cell_magic("scaimind", "submit res", body) is None
    run = ip.user_ns["res"]
    assert isinstance(run, EvaluationRun) and run.evaluation.status is Status.FAILED
    err = capsys.readouterr().err
    assert f"evaluation {run.evaluation_id} ended FAILED" in err and "CUDA on fire" in err
    assert "res holds the EvaluationRun" in err


def test_html_mode_updates_one_display_in_place(ip: Any, scored_setup: Any) -> None:
    ip.run_line_magic("config", "ScaimindMagics.progress = 'html'")
    with capture_output() as captured:
        run = ip.run_line_magic("scaimind", _evaluate_line(scored_setup))
    first, last = captured.outputs[0], captured.outputs[-1]
    assert not first.update and all(o.update for o in captured.outputs[1:])
    assert {o.transient["display_id"] for o in captured.outputs} == {first.transient["display_id"]}
    assert set(last.data) == {"text/plain", "text/html"}
    assert 'data-status="COMPLETED"' in last.data["text/html"]
    assert "scaimind-results" in last.data["text/html"]
    assert last.data["text/plain"].startswith(f"{run.evaluation_id}  COMPLETED")
    # a bundle of the run itself: static text/plain + HTML of its final state
    bundle = run._repr_mimebundle_()
    assert "exact_match" in bundle["text/plain"] and "scaimind-bar" in bundle["text/html"]


def test_doctor_reports_the_mode(ip: Any, capsys: Any) -> None:
    assert ip.run_line_magic("scaimind", "doctor") is None
    out = capsys.readouterr().out
    assert "display mode : text" in out and "InteractiveShell" in out
    assert "cancel button: no kernel: the stop button / Ctrl-C cancels" in out


def test_the_api_key_never_appears_in_output(
    ip: Any, scored_setup: Any, coordinator: Any, capsys: Any
) -> None:
    with capture_output() as captured:
        run = ip.run_line_magic("scaimind", _evaluate_line(scored_setup))
        ip.run_line_magic("scaimind", "doctor")
        with pytest.raises(UsageError) as info:
            ip.run_line_magic("scaimind", "get eval_does_not_exist")
        ip.run_cell("%scaimind get eval_does_not_exist")
    texts = [
        captured.stdout,
        captured.stderr,
        str(info.value),
        repr(run),
        str(run._repr_mimebundle_()),
    ]
    texts += [json.dumps(o.data) for o in captured.outputs]
    out = capsys.readouterr()
    texts += [out.out, out.err]
    assert coordinator.api_key not in "\n".join(texts)


def test_shared_clients_follow_host_and_key(ip: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from scaimind_nb._evaluate import default_client

    first = default_client()
    assert default_client() is first
    monkeypatch.setenv("SCAIGRID_API_KEY", "sk-rotated-key")
    rotated = default_client()
    assert rotated is not first and rotated._core.config.api_key.reveal() == "sk-rotated-key"
    ip.run_line_magic("config", "ScaimindMagics.host = 'http://127.0.0.1:9'")
    assert default_client() is not rotated and default_client().host == "http://127.0.0.1:9"


def test_at_most_eight_shared_clients_are_kept(ip: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from scaimind_nb._evaluate import MAX_SHARED_CLIENTS, default_client

    clients = []
    for i in range(MAX_SHARED_CLIENTS + 1):
        monkeypatch.setenv("SCAIGRID_API_KEY", f"sk-key-{i}")
        clients.append(default_client())
    assert MAX_SHARED_CLIENTS == 8
    assert clients[0]._http.is_closed and not clients[1]._http.is_closed


def test_unload_stops_polling_and_wait_resumes(ip: Any, slow_model: Any, nb_client: Any) -> None:
    from scaimind_nb._progress import POLLER

    bench = slow_model.benchmark
    run = ip.run_line_magic(
        "scaimind",
        f"evaluate {slow_model.job_id} --model {slow_model.model_uri} {bench['name']}@{bench['dataset']} --no-wait",
    )
    poller = POLLER.thread
    assert not run.done and poller is not None and poller.is_alive()
    ip.run_line_magic("unload_ext", "scaimind_nb")
    poller.join(30)
    assert not poller.is_alive() and not run.done
    # waiting again resumes polling; the extension's client is closed, so that is reported
    with pytest.raises(RuntimeError, match="client has been closed"):
        run.wait(timeout=30)
    nb_client.cancel(run.evaluation_id)  # free the coordinator's worker
    ip.run_line_magic("load_ext", "scaimind_nb")
