"""custom-* dataset reading and the python backend's target kinds and model cache."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from scaimind_local import LocalCoordinator
from scaimind_local._backends import ModelCache, read_manifest
from scaimind_local._backends.python import load
from scaimind_local._benchmarks.custom import read_records
from scaimind_local.testing import write_custom_dataset, write_model

from ._util import client_for, submit, wait_for


def test_field_aliases_lists_and_first_n(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "input": "p1", "target": ["x", "y"], "topic": "t"},
        {"question": "p2", "answer": "z"},
        {"prompt": "p3", "output": "w"},
    ]
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    records = read_records(path, "d", None)
    assert [(r["_prompt"], r["_refs"]) for r in records] == [
        ("p1", ["x", "y"]),
        ("p2", ["z"]),
        ("p3", ["w"]),
    ]
    assert records[0]["topic"] == "t"
    assert len(read_records(path, "d", 2)) == 2


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"prompt": "p", "reference": "r"}\n[1, 2]\n', "line 2: expected a JSON object"),
        ('{"reference": "r"}\n', "line 1: no string prompt"),
        ('{"prompt": "p", "reference": 3}\n', "line 1: no reference"),
        ('{"prompt": "p"}\n', "line 1: no reference"),
        ("\n\n", "holds no records"),
        ('{"prompt": "' + "x" * (1 << 20) + '", "reference": "r"}\n', "line 1: longer than 1 MiB"),
    ],
)
def test_bad_datasets_name_the_line(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(text)
    with pytest.raises(ValueError, match=words):
        read_records(path, "d", None)


def test_dataset_size_limit_is_a_400(tmp_path: Path, scaimind_api_key: str) -> None:
    settings = {"custom_max_bytes": 100}
    with LocalCoordinator(
        tmp_path / "db", tmp_path / "d", scaimind_api_key, settings=settings
    ) as c:
        model = write_model(c.drive_root, "org/m")
        rows = [{"prompt": "p" * 50, "reference": "r"}] * 3
        big = write_custom_dataset(c.drive_root, "org/big.jsonl", rows)
        c.register_job("job_big", model)
        with client_for(c) as api:
            resp = submit(api, "job_big", {"name": "custom-big", "dataset": big})
    assert resp.status_code == 400
    assert "larger than this coordinator's limit of 100 bytes" in resp.json()["error"]["message"]


MODULE = """
LOADS = []

def generate(prompts, *, max_new_tokens, temperature, stop):
    return [p.upper() + "|END" for p in prompts]

def factory(options):
    LOADS.append(options)
    class M:
        def generate(self, prompts, **kw):
            return [options["word"]] * len(prompts)
        def loglikelihood(self, pairs):
            return [-1.0] * len(pairs)
    return M()
"""


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "user_models_mod.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("user_models_mod", None)


def test_python_targets_function_factory_and_class(tmp_path: Path, user_module: None) -> None:
    write_model(tmp_path, "fn", target="user_models_mod:generate")
    fn = load(read_manifest(tmp_path / "fn"), {})
    assert fn.generate(["ab"], max_new_tokens=4, temperature=0, stop=["|"]) == ["AB"]
    assert not hasattr(fn, "loglikelihood")
    write_model(tmp_path, "fa", target="user_models_mod:factory", options={"word": "hi"})
    fa = load(read_manifest(tmp_path / "fa"), {})
    assert fa.generate(["a", "b"], max_new_tokens=4, temperature=0, stop=None) == ["hi", "hi"]
    assert fa.loglikelihood([("a", "b")]) == [-1.0]
    write_model(tmp_path, "cl", options={"answers": {"q": "a"}, "default": "?"})
    cl = load(read_manifest(tmp_path / "cl"), {})
    assert cl.generate(["q", "r"], max_new_tokens=4, temperature=0, stop=None) == ["a", "?"]


def test_a_model_is_loaded_once_per_evaluation(tmp_path: Path, user_module: None) -> None:
    import user_models_mod  # type: ignore[import-not-found]

    with LocalCoordinator(tmp_path / "db", tmp_path / "d", "k", workers=1) as c:
        model = write_model(
            c.drive_root, "org/m", target="user_models_mod:factory", options={"word": "r"}
        )
        data = write_custom_dataset(
            c.drive_root, "org/d.jsonl", [{"prompt": "p", "reference": "r"}]
        )
        c.register_job("job_once", model)
        specs = [{"name": f"custom-{i}", "dataset": data} for i in range(3)]
        with client_for(c) as api:
            done = wait_for(api, submit(api, "job_once", *specs).json()["data"]["evaluation_id"])
    assert [r["score"] for r in done["results"]] == [1.0, 1.0, 1.0]
    assert len(user_models_mod.LOADS) == 1


def test_model_cache_reloads_when_the_manifest_changes(tmp_path: Path, user_module: None) -> None:
    import user_models_mod  # type: ignore[import-not-found]

    write_model(tmp_path, "m", target="user_models_mod:factory", options={"word": "a"})
    cache = ModelCache()
    first = cache.get("uri", tmp_path / "m", {})
    assert cache.get("uri", tmp_path / "m", {}) is first
    write_model(tmp_path, "m", target="user_models_mod:factory", options={"word": "b"})
    second = cache.get("uri", tmp_path / "m", {})
    assert second is not first
    assert second.generate(["x"], max_new_tokens=1, temperature=0, stop=None) == ["b"]
    assert len(user_models_mod.LOADS) == 2


def test_a_backend_without_its_extra_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scaimind_local import InvalidBenchmark
    from scaimind_local._backends import _BACKENDS, check_model

    module, extra, _ = _BACKENDS["hf"]
    monkeypatch.setitem(_BACKENDS, "hf", (module, extra, ("surely_not_installed_mod",)))
    write_model(tmp_path, "m", backend="hf", file="model.gguf")
    with pytest.raises(InvalidBenchmark, match=r"pip install 'scaimind-nb\[hf\]'"):
        check_model(read_manifest(tmp_path / "m"), {})
