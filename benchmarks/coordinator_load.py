"""Load on the embedded coordinator vs a bare Starlette JSON route, served the same way.

50 concurrent clients poll `GET /evaluations/{id}` for 20 s against a coordinator holding
10,000 evaluations, then the same against a one-route Starlette app under uvicorn. Prints
requests/s and p50/p99 latency side by side (goal: ≥ half the bare throughput, p99 < 50 ms).
Both servers bind their socket the same way and run uvicorn's defaults (its httptools parser,
a runtime dependency). Both stay up and are loaded in alternating slices (ours, bare, bare,
ours, …), so a change in the shared machine's load hits both alike; the load average is
printed with the figures. The working tree's packages are measured, whatever is installed.

    python benchmarks/coordinator_load.py [--seconds 20] [--slices 4] [--clients 50]
        [--evaluations 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RECORD = {
    "evaluation_id": "eval_0",
    "job_id": "job_bench",
    "status": "COMPLETED",
    "results": [{"benchmark": "custom-qa", "score": 0.75, "metrics": {"exact_match": 0.75}}],
}


def bare_app() -> object:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def get(request: Request) -> JSONResponse:
        return JSONResponse({"data": {**RECORD, "evaluation_id": request.path_params["id"]}})

    return Starlette(routes=[Route("/v1/modules/scaimind/evaluations/{id}", get)])


def serve_bare() -> None:
    """Child mode: the bare route on a free port, printing its URL like `scaimind-local serve`."""
    import socket

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # as the CLI
    sock.bind(("127.0.0.1", 0))
    print(f"bare serving http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(bare_app(), log_level="warning", access_log=False)  # type: ignore[arg-type]
    uvicorn.Server(config).run(sockets=[sock])


def fill(db: Path, n: int) -> list[str]:
    """n COMPLETED evaluations with one result each, written through the store's own writes."""
    from scaimind_local._store import Store

    store = Store(db)
    store.put_job("job_bench", "scaidrive://org/models/m", "COMPLETED")
    ids = []
    spec = [{"name": "custom-qa", "dataset": "scaidrive://org/eval/qa.jsonl", "num_samples": 100}]
    result = {
        "benchmark": "custom-qa",
        "score": 0.75,
        "metrics": {"exact_match": 0.75},
        "stderr": {"exact_match": 0.04},
        "num_samples": 100,
        "extra": {"spec_index": 0},
    }
    progress = [{"benchmark": "custom-qa", "completed": 100, "total": 100}]
    for _ in range(n):
        row = store.create_evaluation("job_bench", "scaidrive://org/models/m", "", spec)
        store.add_result(row["id"], [result], progress, 0, "custom-qa", [])
        store.finish(row["id"], "COMPLETED")
        ids.append(row["id"])
    store.close()
    return ids


def start(cmd: list[str]) -> tuple[subprocess.Popen[str], str]:
    """Run a server command and wait until its TCP port accepts connections."""
    import socket

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    url = proc.stdout.readline().split()[2]
    host, port = url.removeprefix("http://").split(":")
    for _ in range(100):
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, url


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """One keep-alive HTTP/1.1 GET on a raw stream (a light client, so the server is measured)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    await reader.readexactly(length)
    return int(head.split(b" ", 2)[1])


async def load(url: str, key: str, ids: list[str], clients: int, seconds: float) -> list[float]:
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client(rng: random.Random) -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while time.perf_counter() < deadline:
                path = f"/v1/modules/scaimind/evaluations/{rng.choice(ids)}"
                request = (
                    f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n\r\n"
                ).encode()
                t0 = time.perf_counter()
                status = await _get(reader, writer, request)
                latencies.append(time.perf_counter() - t0)
                if status != 200:
                    raise RuntimeError(f"GET {path} answered {status}")
        finally:
            writer.close()

    await asyncio.gather(*(client(random.Random(i)) for i in range(clients)))
    return latencies


def figures(latencies: list[float], seconds: float) -> tuple[float, float, float]:
    """Requests/s, p50 ms and p99 ms of one server's pooled slices."""
    ordered = sorted(latencies)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return len(ordered) / seconds, pick(0.50), pick(0.99)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--evaluations", type=int, default=10_000)
    parser.add_argument("--slices", type=int, default=4, help="alternations of the two loads")
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare()
        return
    sys.path.insert(0, str(ROOT))
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "load.sqlite"
        t0 = time.perf_counter()
        ids = fill(db, args.evaluations)
        print(f"filled {len(ids)} evaluations in {time.perf_counter() - t0:.1f} s")
        key = secrets.token_urlsafe(16)
        ours = [sys.executable, "-m", "scaimind_local", "serve", "--port", "0", "--db", str(db)]
        servers = {
            "scaimind_local": [*ours, "--drive-root", tmp, "--api-key", key],
            "bare starlette": [sys.executable, __file__, "--serve-bare"],
        }
        procs = {}
        try:
            for name, cmd in servers.items():
                procs[name] = start(cmd)
            latencies: dict[str, list[float]] = {name: [] for name in servers}
            share = args.seconds / args.slices
            for i in range(args.slices):
                for name in list(servers)[:: 1 if i % 2 == 0 else -1]:
                    latencies[name] += asyncio.run(
                        load(procs[name][1], key, ids, args.clients, share)
                    )
        finally:
            for proc, _url in procs.values():
                proc.terminate()
                proc.wait(10)
    rows = [(name, *figures(lat, args.seconds)) for name, lat in latencies.items()]
    parser_name = "httptools" if importlib.util.find_spec("httptools") else "h11"
    print(
        f"\n{args.clients} clients, {args.seconds:.0f} s each in {args.slices} alternating slices,"
        f" GET of {args.evaluations} evaluations"
    )
    print(
        f"uvicorn parser {parser_name}, load average {load_before:.2f} at the start,"
        f" {os.getloadavg()[0]:.2f} at the end"
    )
    print(f"{'server':<16}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, rps, p50, p99 in rows:
        print(f"{name:<16}{rps:>10.0f}{p50:>10.1f}{p99:>10.1f}")
    ratio = rows[0][1] / rows[1][1]
    verdict = "ok" if ratio >= 0.5 and rows[0][3] < 50 else "below goal"
    print(
        f"throughput ratio {ratio:.2f} (goal >= 0.5), p99 {rows[0][3]:.1f} ms (goal < 50): {verdict}"
    )


if __name__ == "__main__":
    main()
