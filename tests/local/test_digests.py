"""Content digests: what they cover, their stat cache (and its documented blind spot), and a run
that refuses data or weights changed since submit while the other benchmarks keep their results.

The run-time cases drive `Service.run` by hand on a store without workers, so "between submit
and run" is a point in the test, not a race.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scaimind_local import LocalCoordinator
from scaimind_local._backends import model_digest, read_manifest
from scaimind_local._benchmarks.base import BenchmarkSpec
from scaimind_local._digest import FILES
from scaimind_local._drive import Drive
from scaimind_local._service import Service
from scaimind_local._store import Store
from scaimind_local.testing import write_custom_dataset, write_model

from ._util import submit, wait_for

ROWS = [{"prompt": f"q{i}", "reference": f"a{i}"} for i in range(4)]
ANSWERS = {r["prompt"]: r["reference"] for r in ROWS}


def _digest_of(folder: Path) -> str:
    return model_digest(read_manifest(folder))


def _hf_model(root: Path) -> Path:
    folder = root / "hf-model"
    (folder / "weights").mkdir(parents=True)
    (folder / "weights" / "model.safetensors").write_bytes(b"\x01" * 4096)
    (folder / "weights" / "config.json").write_text('{"layers": 2}')
    (folder / "tok").mkdir()
    (folder / "tok" / "tokenizer.json").write_text('{"vocab": ["a"]}')
    manifest = {"backend": "hf", "path": "weights", "tokenizer": "tok", "dtype": "float32"}
    (folder / "scaimind-model.json").write_text(json.dumps(manifest))
    return folder


def test_model_digest_covers_manifest_weights_and_tokenizer_and_survives_a_copy(
    tmp_path: Path,
) -> None:
    folder = _hf_model(tmp_path)
    first = _digest_of(folder)
    assert first.startswith("sha256:") and len(first) == 7 + 64
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(folder, copy)
    assert _digest_of(copy) == first  # names are relative to the model folder
    (copy / "weights" / "model.safetensors").write_bytes(b"\x02" * 4096)
    weights_changed = _digest_of(copy)
    assert weights_changed != first
    (copy / "tok" / "tokenizer.json").write_text('{"vocab": ["b"]}')
    assert _digest_of(copy) not in (first, weights_changed)
    manifest = json.loads((folder / "scaimind-model.json").read_text())
    (folder / "scaimind-model.json").write_text(json.dumps({**manifest, "dtype": "bfloat16"}))
    assert _digest_of(folder) != first
    (folder / "weights" / "extra.bin").write_bytes(b"x")
    assert _digest_of(folder) not in (first, _digest_of(copy))


def test_a_gguf_is_hashed_once_until_its_size_or_mtime_changes(tmp_path: Path) -> None:
    folder = tmp_path / "gguf-model"
    folder.mkdir()
    gguf = folder / "m.Q4.gguf"
    gguf.write_bytes(os.urandom(1 << 20))
    (folder / "scaimind-model.json").write_text('{"backend": "llamacpp", "path": "m.Q4.gguf"}')
    hashed = FILES.hashed
    first = _digest_of(folder)
    assert FILES.hashed == hashed + 1
    assert _digest_of(folder) == first and FILES.hashed == hashed + 1  # from the cache
    os.utime(gguf, ns=(gguf.stat().st_atime_ns, gguf.stat().st_mtime_ns + 1_000_000))
    assert _digest_of(folder) == first and FILES.hashed == hashed + 2  # re-read, same bytes
    gguf.write_bytes(os.urandom(1 << 20) + b"!")
    assert _digest_of(folder) != first and FILES.hashed == hashed + 3


def test_the_documented_blind_spot_a_same_size_rewrite_with_the_old_mtime(tmp_path: Path) -> None:
    """docs/reuse.md says so: (device, inode, size, mtime_ns) unchanged -> the cached digest."""
    folder = tmp_path / "gguf-model"
    folder.mkdir()
    gguf = folder / "m.gguf"
    gguf.write_bytes(b"a" * 1000)
    (folder / "scaimind-model.json").write_text('{"backend": "llamacpp", "path": "m.gguf"}')
    first = _digest_of(folder)
    stat = gguf.stat()
    with gguf.open("r+b") as fh:  # in place: same inode, same size
        fh.write(b"b" * 1000)
    os.utime(gguf, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert _digest_of(folder) == first


@pytest.fixture
def user_module(tmp_path: Path) -> Iterator[Path]:
    source = tmp_path / "digest_user_model.py"
    source.write_text("def generate(prompts, **kw):\n    return ['x' for _ in prompts]\n")
    sys.path.insert(0, str(tmp_path))
    yield source
    sys.path.remove(str(tmp_path))
    sys.modules.pop("digest_user_model", None)


def test_a_python_models_digest_covers_its_target_module(tmp_path: Path, user_module: Path) -> None:
    write_model(tmp_path / "drive", "m", target="digest_user_model:generate")
    first = _digest_of(tmp_path / "drive" / "m")
    user_module.write_text(user_module.read_text() + "# retrained\n")
    assert _digest_of(tmp_path / "drive" / "m") != first


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    """A service without worker threads: the test claims and runs evaluations itself."""
    drive = tmp_path / "drive"
    drive.mkdir()
    store = Store(tmp_path / "db.sqlite")
    store.put_job("job_d", "scaidrive://org/m", "COMPLETED")
    yield Service(store, Drive(drive))
    store.close()


def _submit(service: Service, *names: str) -> str:
    specs = [BenchmarkSpec(n, dataset=f"scaidrive://org/{n}.jsonl") for n in names]
    return str(service.submit("job_d", "scaidrive://org/m", "", specs)["id"])


def _run(service: Service, eval_id: str) -> dict:
    row = service.store.claim_next()
    assert row is not None and row["id"] == eval_id
    service.run(row)
    record = service.store.get_evaluation(eval_id)
    assert record is not None
    return record


def test_data_edited_after_submit_is_refused_and_the_other_benchmark_keeps_its_result(
    service: Service,
) -> None:
    drive = service.drive.root
    write_model(drive, "org/m", options={"answers": ANSWERS})
    for name in ("custom-a", "custom-b"):
        write_custom_dataset(drive, f"org/{name}.jsonl", ROWS)
    eval_id = _submit(service, "custom-a", "custom-b")
    submitted = service.store.get_evaluation(eval_id)
    assert submitted is not None
    recorded = submitted["benchmarks"][1]["data"]["digest"]
    write_custom_dataset(drive, "org/custom-b.jsonl", [{**ROWS[0], "reference": "other"}, *ROWS])
    done = _run(service, eval_id)
    a, b = done["results"]
    assert (a["benchmark"], a["status"], a["score"]) == ("custom-a", "COMPLETED", 1.0)
    assert (b["benchmark"], b["status"], b["metrics"]) == ("custom-b", "FAILED", {})
    now = "sha256:" + hashlib.sha256((drive / "org/custom-b.jsonl").read_bytes()).hexdigest()
    assert b["error"] == {
        "code": "INVALID_ARGUMENT",
        "message": f"the data of custom-b (scaidrive://org/custom-b.jsonl) changed before the run "
        f"(digest {recorded} at submit, {now} now); not scored: submit again to score the new data",
    }
    assert done["status"] == "FAILED"
    assert done["error"]["message"].startswith("benchmark custom-b failed: the data of custom-b")
    assert len(service.store.list_samples(eval_id, "custom-a", 100, None)[0]) == 4
    assert service.store.list_samples(eval_id, "custom-b", 100, None)[0] == []


def test_data_edited_while_it_is_scored_is_not_recorded(service: Service, tmp_path: Path) -> None:
    (tmp_path / "editing_model.py").write_text(
        textwrap.dedent(
            """
            class Model:
                def __init__(self, options):
                    self.path = options["path"]

                def generate(self, prompts, **kw):
                    with open(self.path, "a") as fh:
                        fh.write('{"prompt": "late", "reference": "x"}\\n')
                    return ["" for _ in prompts]
            """
        )
    )
    sys.path.insert(0, str(tmp_path))
    try:
        dataset = service.drive.root / "org/custom-a.jsonl"
        write_model(
            service.drive.root,
            "org/m",
            target="editing_model:Model",
            options={"path": str(dataset)},
        )
        write_custom_dataset(service.drive.root, "org/custom-a.jsonl", ROWS)
        done = _run(service, _submit(service, "custom-a"))
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("editing_model", None)
    [result] = done["results"]
    assert result["status"] == "FAILED" and "changed during the run" in result["error"]["message"]
    assert done["status"] == "FAILED"


def test_a_model_changed_after_submit_is_refused(service: Service) -> None:
    drive = service.drive.root
    write_model(drive, "org/m", options={"answers": ANSWERS})
    write_custom_dataset(drive, "org/custom-a.jsonl", ROWS)
    eval_id = _submit(service, "custom-a")
    write_model(drive, "org/m", options={"answers": {**ANSWERS, "q0": "retrained"}})
    done = _run(service, eval_id)
    assert done["status"] == "FAILED" and done["results"] == []
    assert done["error"]["code"] == "INVALID_ARGUMENT"
    assert done["error"]["message"].startswith(
        "model: scaidrive://org/m changed since submit (digest sha256:"
    )


def test_a_benchmark_failing_at_run_time_fails_alone(
    coordinator: LocalCoordinator, api: httpx.Client, unique: str
) -> None:
    drive = coordinator.drive_root
    model = write_model(drive, f"org/models/plain-{unique}", options={"answers": ANSWERS})
    dataset = write_custom_dataset(drive, f"org/eval/four-{unique}.jsonl", ROWS)
    coordinator.register_job(f"job_alone_{unique}", model)
    specs = [
        {"name": "custom-a", "dataset": dataset},
        {"name": "humaneval", "parameters": {"prompt_mode": "chat"}},  # refused by a plain model
        {"name": "custom-b", "dataset": dataset, "num_samples": 2},
    ]
    eid = submit(api, f"job_alone_{unique}", *specs).json()["data"]["evaluation_id"]
    done = wait_for(api, eid)
    assert done["status"] == "FAILED"
    assert [(r["benchmark"], r["status"]) for r in done["results"]] == [
        ("custom-a", "COMPLETED"),
        ("humaneval", "FAILED"),
        ("custom-b", "COMPLETED"),
    ]
    assert [r.get("score") for r in done["results"]] == [1.0, None, 1.0]
    assert done["error"]["message"].startswith(
        "benchmark humaneval failed: humaneval: prompt_mode=chat needs a chat model"
    )
    assert str(drive.resolve()) not in json.dumps(done)


def test_a_file_from_before_digests_opens_and_its_records_carry_none(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite"
    store = Store(db)
    eval_id = store.create_evaluation("job", "scaidrive://org/m", "", [{"name": "mmlu"}])["id"]
    store.close()
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE evaluations DROP COLUMN model_digest")
        conn.execute("UPDATE evaluations SET rendered = NULL")
    reopened = Store(db)
    try:
        rendered = json.loads(reopened.get_rendered(eval_id) or b"{}")
        assert "model_digest" not in rendered and "data" not in rendered["benchmarks"][0]
        later = reopened.create_evaluation(
            "job", "scaidrive://org/m", "", [{"name": "mmlu"}], model_digest="sha256:ab"
        )
        assert json.loads(later["rendered"])["model_digest"] == "sha256:ab"
    finally:
        reopened.close()
