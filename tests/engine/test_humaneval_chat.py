"""humaneval's chat prompt mode: code extraction, program assembly and chat-model runs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scaimind_local import LocalCoordinator
from scaimind_local._backends import read_manifest
from scaimind_local._backends.base import supports_chat
from scaimind_local._backends.python import load as load_python
from scaimind_local._benchmarks.base import BenchmarkSpec, InvalidBenchmark, RunContext
from scaimind_local._benchmarks.humaneval import (
    CHAT_STOP,
    RUNNER,
    chat_messages,
    default_dataset,
    defines,
    extract_code,
    program_for,
    prompt_context,
    read_problems,
)
from scaimind_local._sandbox import Sandbox, probe
from scaimind_local.testing import ScriptedModel, write_model
from scaimind_nb import Client

pytestmark = pytest.mark.isolation

PROBLEMS = read_problems(default_dataset())
BY_ID = {p["task_id"]: p for p in PROBLEMS}


def full_function(problem: dict[str, Any]) -> str:
    """The canonical solution as a whole function: the entry point's def from the prompt + body."""
    start = re.search(rf"^def {problem['entry_point']}\(", problem["prompt"], re.M)
    assert start is not None
    return problem["prompt"][start.start() :] + problem["canonical_solution"]


def reply(problem: dict[str, Any]) -> str:
    """A chatty reply: prose, the whole function in a python fence, more prose."""
    return f"Sure! Here it is:\n\n```python\n{full_function(problem)}```\n\nIt works because…"


def chat_answers(replies: dict[str, str]) -> dict[str, str]:
    """ScriptedModel answers keyed the way its chat reads them (the last message's content)."""
    return {chat_messages(BY_ID[t])[-1]["content"]: text for t, text in replies.items()}


# extraction


def test_extracts_a_fenced_block_with_or_without_language_tag() -> None:
    assert extract_code("Here:\n```python\ndef f():\n    return 1\n```\nDone.") == (
        "def f():\n    return 1\n"
    )
    assert extract_code("```\ndef f():\n    return 2\n```") == "def f():\n    return 2\n"
    assert extract_code("```py\nx = 1\n```") == "x = 1\n"


def test_takes_the_first_python_block_of_several() -> None:
    text = (
        "Install nothing:\n```bash\npip install x\n```\n"
        "```python\ndef first():\n    pass\n```\n"
        "```python\ndef second():\n    pass\n```\n"
    )
    assert extract_code(text) == "def first():\n    pass\n"


def test_without_a_fence_the_raw_text_is_the_code() -> None:
    assert extract_code("    return x + 1\n") == "    return x + 1\n"
    assert extract_code("") == ""


def test_an_unclosed_fence_runs_to_the_end() -> None:
    # what the chat stop sequence leaves: the closing fence is cut off
    assert extract_code("Sure:\n```python\ndef f():\n    return 3") == "def f():\n    return 3"


def test_defines_finds_top_level_definitions_only() -> None:
    assert defines("import math\n\ndef add(a, b):\n    return a + b\n", "add")
    assert defines("async def add(a, b):\n    pass\n", "add")
    assert not defines("    def add(a, b):\n        pass\n", "add")
    assert not defines("def add_all(a):\n    pass\n", "add")


# program assembly


def run(problem: dict[str, Any], completion: str, mode: str = "chat") -> str:
    with Sandbox(1, isolation=probe(), timeout=3.0) as sandbox:
        return sandbox.run(program_for(problem, completion, mode)).outcome


def test_a_redefinition_runs_after_the_prompts_imports_not_inside_the_stub() -> None:
    problem = BY_ID["HumanEval/0"]  # `from typing import List` precedes the def
    code = full_function(problem)
    assert "from typing import List" not in code
    program = program_for(problem, code, "chat")
    assert program.sources[0].startswith("from typing import List")
    assert program.sources[0].count("def has_close_elements(") == 1
    assert program.call == ("check", "has_close_elements")
    assert run(problem, code) == "passed"
    # the fenced reply itself, appended to the prompt as a completion, is not Python
    assert run(problem, reply(problem), "completion") == "failed"


def test_the_prompts_helpers_are_kept_and_the_answers_helpers_too() -> None:
    problem = BY_ID["HumanEval/10"]  # the prompt defines is_palindrome, used by the solution
    assert "def is_palindrome(" in prompt_context(problem)
    assert "def make_palindrome(" not in prompt_context(problem)
    assert run(problem, full_function(problem)) == "passed"
    helper = (
        "def _reverse(s):\n    return s[::-1]\n\n\n"
        "def add(x: int, y: int):\n    return _reverse(str(x + y))[::-1] and x + y\n"
    )
    assert run(BY_ID["HumanEval/53"], helper) == "passed"


def test_an_answer_without_the_def_is_a_body_after_the_prompt() -> None:
    problem = BY_ID["HumanEval/53"]
    assert (
        program_for(problem, "    return x + y\n", "chat").sources[0].startswith(problem["prompt"])
    )
    assert run(problem, "    return x + y\n") == "passed"


# runs


def chat_model(replies: dict[str, str], **options: Any) -> Any:
    """A ScriptedModel with the chat option, loaded the way the coordinator loads it."""
    return ScriptedModel({"chat": True, "answers": chat_answers(replies), **options})


def test_canonical_whole_functions_in_fences_pass_all_164(ctx: RunContext) -> None:
    model = chat_model({p["task_id"]: reply(p) for p in PROBLEMS})
    result = RUNNER.run(BenchmarkSpec("humaneval"), model, ctx)
    assert result.extra["prompt_mode"] == "chat"
    assert result.metrics["pass@1"] == 1.0 and result.num_samples == 164
    first = next(s for s in result.samples if s["id"] == "HumanEval/0")
    assert first["reply"].startswith("Sure! Here it is:") and "```" not in first["completion"]
    assert first["completion"].startswith("def has_close_elements(")


class Recorder(ScriptedModel):
    """A ScriptedModel that records which method was called with which stop sequences."""

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self.calls: list[tuple[str, list[str] | None]] = []

    def generate(self, prompts: list[str], **kw: Any) -> list[str]:
        self.calls.append(("generate", kw["stop"]))
        return super().generate(prompts, **kw)

    def _chat(self, conversations: list[list[dict[str, str]]], **kw: Any) -> list[str]:
        self.calls.append(("chat", kw["stop"]))
        return super()._chat(conversations, **kw)


@pytest.mark.parametrize(
    ("chat", "requested", "used"),
    [
        (True, None, "chat"),
        (False, None, "completion"),
        (True, "completion", "completion"),
        (True, "chat", "chat"),
    ],
)
def test_auto_picks_chat_for_chat_models(
    ctx: RunContext, chat: bool, requested: str | None, used: str
) -> None:
    model = Recorder({"chat": chat, "default": "    return 0\n"})
    assert supports_chat(model) is chat
    params = {} if requested is None else {"prompt_mode": requested}
    result = RUNNER.run(BenchmarkSpec("humaneval", num_samples=2, parameters=params), model, ctx)
    assert result.extra["prompt_mode"] == used
    assert result.extra["params"]["prompt_mode"] == (requested or "auto")
    method, stop = model.calls[0]
    assert method == ("chat" if used == "chat" else "generate")
    if used == "chat":
        assert stop == CHAT_STOP and not any("def" in s for s in stop)
    else:
        assert stop is not None and "\ndef" in stop


def test_chat_mode_on_a_completion_model_is_refused(ctx: RunContext) -> None:
    spec = BenchmarkSpec("humaneval", num_samples=1, parameters={"prompt_mode": "chat"})
    with pytest.raises(InvalidBenchmark, match="prompt_mode=chat needs a chat model"):
        RUNNER.run(spec, Recorder({}), ctx)


def test_an_unknown_prompt_mode_is_refused_at_validation(ctx: RunContext) -> None:
    spec = BenchmarkSpec("humaneval", parameters={"prompt_mode": "instruct"})
    with pytest.raises(InvalidBenchmark, match="use one of auto, completion, chat"):
        RUNNER.validate(spec, ctx)


def test_the_python_backend_passes_chat_through(tmp_path: Path) -> None:
    write_model(tmp_path, "m/plain")
    assert not supports_chat(load_python(read_manifest(tmp_path / "m/plain"), {}))
    write_model(tmp_path, "m/chat", options={"chat": True, "answers": {"hi": "a\n```\nb"}})
    model = load_python(read_manifest(tmp_path / "m/chat"), {})
    assert supports_chat(model)
    conversation = [{"role": "user", "content": "hi"}]
    assert model.chat([conversation], max_new_tokens=5, temperature=0.0, stop=None) == ["a\n```\nb"]
    assert model.chat([conversation], max_new_tokens=5, temperature=0.0, stop=CHAT_STOP) == ["a"]


@pytest.fixture
def client(coordinator: LocalCoordinator) -> Iterator[Client]:
    with Client(host=coordinator.url, api_key=coordinator.api_key) as c:
        yield c


def test_chat_mode_through_the_coordinator(
    coordinator: LocalCoordinator, client: Client, unique: str
) -> None:
    chosen = PROBLEMS[:6]
    replies = {p["task_id"]: reply(p) for p in chosen}
    replies[chosen[0]["task_id"]] = "I cannot write that function."
    uri = write_model(
        coordinator.drive_root,
        f"org/models/chat-{unique}",
        options={"chat": True, "answers": chat_answers(replies)},
    )
    coordinator.register_job(f"job_{unique}", uri)
    dataset = Path(coordinator.drive_root, f"org/six-{unique}.jsonl")
    dataset.write_text("".join(json.dumps(p) + "\n" for p in chosen))
    spec = {"name": "humaneval", "dataset": f"scaidrive://org/six-{unique}.jsonl"}
    submitted = client.submit(f"job_{unique}", uri, [spec])
    evaluation = client.wait(submitted.evaluation_id, timeout=120)
    assert evaluation.status.value == "COMPLETED", evaluation.error
    result = evaluation.result("humaneval")
    assert result.extra["prompt_mode"] == "chat"
    assert result.metrics["pass@1"] == pytest.approx(5 / 6)
    with httpx.Client(
        base_url=coordinator.url, headers={"Authorization": f"Bearer {coordinator.api_key}"}
    ) as http:
        samples = http.get(
            f"/v1/modules/scaimind/evaluations/{submitted.evaluation_id}/samples",
            params={"benchmark": "humaneval", "page_size": 10},
        ).json()["data"]["samples"]
    assert "I cannot write that function." in str(samples)
