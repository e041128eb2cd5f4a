"""The magics in an in-process IPython shell against a real coordinator on loopback."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from scaimind_nb import EvaluationRun


def _evaluate_line(setup: Any, extra: str = "") -> str:
    bench = setup.benchmark
    return f"evaluate {setup.job_id} --model {setup.model_uri} {bench['name']}@{bench['dataset']} {extra}"


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


def test_help_is_argparse_style(ip: Any) -> None:
    doc = ip.find_line_magic("scaimind").__doc__
    for word in (
        "%scaimind COMMAND",
        "evaluate",
        "get",
        "wait",
        "list",
        "compare",
        "doctor",
        "submit",
    ):
        assert word in doc


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "the following arguments are required: COMMAND"),
        ("evaluate job_1 mmlu", "the following arguments are required: --model"),
        ("evaluate job_1 --model m mmlu:abc", "benchmark 'mmlu:abc': write name, name:num_samples"),
        ("evaluate job_1 --model m custom-qa", "benchmark 'custom-qa' needs a dataset"),
        ("evaluate job_1 --model m mmlu:0", "num_samples must be an integer >= 1"),
        ("frobnicate", "invalid choice: 'frobnicate'"),
        ("list --limit 0", "--page-size and --limit must be positive integers"),
        ("submit df", "use %%scaimind submit [VAR]"),
    ],
)
def test_bad_line_input_is_a_one_line_usage_error(ip: Any, line: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("scaimind", line)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


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


def test_config_settings_are_validated_and_applied(
    ip: Any, nb_settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ip.run_line_magic("config", "ScaimindMagics.progress = 'HTML'")
    ip.run_line_magic("config", "ScaimindMagics.display_limit = 3")
    ip.run_line_magic("config", "ScaimindMagics.host = 'http://127.0.0.1:9'")
    assert (nb_settings.progress, nb_settings.display_limit) == ("html", 3)
    assert nb_settings.host == "http://127.0.0.1:9"
    # %config reports invalid values as errors and keeps the previous value
    ip.run_line_magic("config", "ScaimindMagics.progress = 'bars'")
    ip.run_line_magic("config", "ScaimindMagics.poll_interval = 0")
    assert "expected any of ['auto', 'widget', 'html', 'text', 'off']" in caplog.text
    assert "poll_interval must be > 0 seconds" in caplog.text
    assert (nb_settings.progress, nb_settings.poll_interval) == ("html", 0.2)


def test_evaluate_blocks_and_returns_the_run(ip: Any, scored_setup: Any, capsys: Any) -> None:
    run = ip.run_line_magic("scaimind", _evaluate_line(scored_setup))
    assert isinstance(run, EvaluationRun)
    assert run.evaluation.status.value == "COMPLETED"
    assert run.evaluation.score(scored_setup.benchmark["name"]) == scored_setup.expected_score
    out = capsys.readouterr().out
    assert f"[scaimind] {run.evaluation_id}  COMPLETED" in out  # text mode outside a kernel
    frame = run.to_frame()
    assert frame["value"].dtype == "float64" and frame["value"].tolist()[0] == 0.75


def test_no_wait_then_wait_get_compare_and_list(ip: Any, scored_setup: Any) -> None:
    run = ip.run_line_magic("scaimind", _evaluate_line(scored_setup, "--no-wait"))
    assert isinstance(run, EvaluationRun)
    waited = ip.run_line_magic("scaimind", f"wait {run.evaluation_id} --timeout 60")
    assert waited.evaluation.status.value == "COMPLETED"
    evaluation = ip.run_line_magic("scaimind", f"get {run.evaluation_id}")
    assert evaluation.evaluation_id == run.evaluation_id and evaluation.results
    other = ip.run_line_magic("scaimind", _evaluate_line(scored_setup))
    table = ip.run_line_magic("scaimind", f"compare {run.evaluation_id} {other.evaluation_id}")
    assert isinstance(table, pd.DataFrame) and table.shape[1] == 2
    ip.run_line_magic("config", "ScaimindMagics.display_limit = 1")
    listed = ip.run_line_magic("scaimind", "list --page-size 1 --limit 3")
    assert isinstance(listed, pd.DataFrame) and len(listed) == 3
    assert "Showing 1 of 3 rows" in repr(listed)


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
    # the same request as YAML, with the {"data": …} envelope a copied response may carry
    yaml_body = (
        f"job_id: {scored_setup.job_id}\nmodel_uri: {scored_setup.model_uri}\n"
        f"benchmarks:\n  - name: {scored_setup.benchmark['name']}\n"
        f"    dataset: {scored_setup.benchmark['dataset']}\n"
    )
    run = ip.run_cell_magic("scaimind", "submit", yaml_body)
    assert isinstance(run, EvaluationRun) and run.evaluation.status.value == "COMPLETED"


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
    assert isinstance(run, EvaluationRun) and run.evaluation.status.value == "FAILED"
    err = capsys.readouterr().err
    assert f"evaluation {run.evaluation_id} ended FAILED" in err and "CUDA on fire" in err
    assert "res holds the EvaluationRun" in err


def test_html_mode_updates_one_display_in_place(ip: Any, slow_model: Any) -> None:
    ip.run_line_magic("config", "ScaimindMagics.progress = 'html'")
    bench = slow_model.benchmark
    with capture_output() as captured:
        run = ip.run_line_magic(
            "scaimind",
            f"evaluate {slow_model.job_id} --model {slow_model.model_uri} {bench['name']}@{bench['dataset']}",
        )
    outputs = captured.outputs
    assert len(outputs) >= 2  # first display, then in-place updates
    first, last = outputs[0].data, outputs[-1].data
    assert set(last) == {"text/plain", "text/html"}
    assert (
        'data-status="COMPLETED"' in last["text/html"] and "scaimind-results" in last["text/html"]
    )
    assert last["text/plain"].startswith(f"{run.evaluation_id}  COMPLETED")
    assert "COMPLETED" not in first["text/plain"]
    # a bundle of the run itself: static text/plain + HTML of its final state
    bundle = run._repr_mimebundle_()
    assert "exact_match" in bundle["text/plain"] and "<progress" in bundle["text/html"]


def test_doctor_reports_the_mode(ip: Any, capsys: Any) -> None:
    assert ip.run_line_magic("scaimind", "doctor") is None
    out = capsys.readouterr().out
    assert "display mode : text" in out and "InteractiveShell" in out


def test_the_api_key_never_appears_in_output(
    ip: Any, scored_setup: Any, coordinator: Any, capsys: Any
) -> None:
    with capture_output() as captured:
        run = ip.run_line_magic("scaimind", _evaluate_line(scored_setup))
        ip.run_line_magic("scaimind", "doctor")
        with pytest.raises(Exception) as info:
            ip.run_line_magic("scaimind", "get eval_does_not_exist")
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


def test_unload_stops_running_pollers(ip: Any, slow_model: Any) -> None:
    bench = slow_model.benchmark
    run = ip.run_line_magic(
        "scaimind",
        f"evaluate {slow_model.job_id} --model {slow_model.model_uri} {bench['name']}@{bench['dataset']} --no-wait",
    )
    poller = run._board._thread
    assert not run.done and poller is not None and poller.is_alive()
    ip.run_line_magic("unload_ext", "scaimind_nb")
    poller.join(5)
    assert not poller.is_alive() and not run.done
    # waiting again resumes polling; the extension's client is closed, so that is reported
    with pytest.raises(RuntimeError, match="client has been closed"):
        run.wait(timeout=10)
    ip.run_line_magic("load_ext", "scaimind_nb")
