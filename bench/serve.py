"""Serving benchmark: whole REST turns through real `slmbot run` processes, next to a bare echo.

Three servers, each its own process(es), loaded by this process over HTTP:

- ``echo``: a bare FastAPI endpoint with the REST channel's shape (the ceiling);
- ``bot_1_worker``: the example bot, one worker, the single-process default (SQLite, no Redis);
- ``bot_2_workers``: two workers (SO_REUSEPORT) sharing the local PostgreSQL and Redis.

For 1, 16 and 64 concurrent conversations it measures messages per second and the p50/p99
latency each message sees (parse, flow, actions, store), overall and for each message of the
script (which turns make the tail). Then it sends ``--growth`` more
messages and reports the workers' peak RSS and how much their RSS grew meanwhile.

    python -m bench.serve [--json] [--growth 20000] [--only echo,bot_1_worker,bot_2_workers]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from bench.timing import log, publish

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ["hi", "where is my order?", "what are your opening hours?", "B-2001", "I want to return the yoga mat from C-3310", "jane@example.com", "thanks, bye"]
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS = "redis://127.0.0.1:6379/0"
CONCURRENCY = {"c1": (1, 300), "c16": (16, 1500), "c64": (64, 3000)}  # conversations, messages measured
RUN = uuid.uuid4().hex[:8]
TARGETS = "targets (issue 5, 2 cores): >= 1000 messages/s, p99 <= 50 ms at 64 conversations, RSS <= 400 MB per worker, growth < 5%"


def _fresh_postgres_schema(name: str) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(POSTGRES)
    with engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"))
    engine.dispose()
    return f"{POSTGRES}?options=-csearch_path%3D{name}"


def worker_count(kind: str) -> int:
    return 2 if kind == "bot_2_workers" else 1


def start(kind: str, port: int, model: Path, scratch: Path) -> subprocess.Popen:
    """Start one of the three servers; it is ready once /health answers."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if kind == "echo":
        command = [sys.executable, "-m", "uvicorn", "bench.echo:app", "--port", str(port), "--no-access-log", "--log-level", "warning"]
    else:
        workers = worker_count(kind)
        if workers == 2:
            env.update(DATABASE_URL=_fresh_postgres_schema("slmbot_bench"), REDIS_URL=REDIS)
        else:
            env.update(DATABASE_URL=f"sqlite:///{scratch}/bench.db")
            env.pop("REDIS_URL", None)
        command = [sys.executable, "-m", "bot", "run", "--model", str(model), "--port", str(port), "--workers", str(workers), "--data-dir", str(scratch)]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_ready(url: str, server: subprocess.Popen, settle_s: float) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            if httpx.get(url + "/health").status_code == 200:
                time.sleep(settle_s)  # further workers load their models a moment later
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not become ready in 120 s")


def spawned_children(pid: int) -> list[int]:
    """The processes ``pid`` started with multiprocessing's spawn (not its resource tracker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


def serving_processes(server: subprocess.Popen, workers: int) -> dict[int, list[int]]:
    """Each worker (the server itself, or its worker children) and the parsing process(es) it started."""
    worker_pids = [server.pid] if workers == 1 else spawned_children(server.pid)
    return {worker: spawned_children(worker) for worker in worker_pids}


def memory_mb(pid: int, field: str) -> float:
    """VmRSS (now), VmHWM (peak) or RssAnon (private, now) of ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


async def load(url: str, conversations: int, messages: int, tag: str) -> dict[str, Any]:
    """``conversations`` customers play the script (new ids each round) until ``messages`` were answered.

    Besides the overall figures, ``by_message`` gives each message of the script its own p50 and
    p99 and how many of its answers took longer than the overall p99: which turns make the tail.
    aiohttp, not httpx: at 64 connections httpx's pool costs more CPU than the echo server it loads.
    """
    samples: list[tuple[str, float]] = []
    budget = itertools.count()
    tag = f"{tag}-{RUN}"  # customers of an earlier run are nobody's concern in the shared Redis

    async def customer(session: aiohttp.ClientSession, number: int) -> None:
        for round_ in itertools.count():
            for text in SCRIPT:
                if next(budget) >= messages:
                    return
                started = time.perf_counter()
                body = {"sender": f"{tag}-{number}-{round_}", "message": text}
                async with session.post(url + "/webhooks/rest/webhook", json=body) as response:
                    response.raise_for_status()
                    await response.read()
                samples.append((text, (time.perf_counter() - started) * 1000))

    connector = aiohttp.TCPConnector(limit=conversations)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(customer(session, n) for n in range(conversations)))
        elapsed = time.perf_counter() - started
    cuts = statistics.quantiles([ms for _, ms in samples], n=100)
    by_message = {}
    for text in SCRIPT:
        times = [ms for said, ms in samples if said == text]
        if len(times) >= 2:
            own = statistics.quantiles(times, n=100)
            by_message[text] = {"p50_ms": round(own[49], 2), "p99_ms": round(own[98], 2), "over_p99": sum(ms > cuts[98] for ms in times)}
    return {"per_second": round(len(samples) / elapsed, 1), "p50_ms": round(cuts[49], 2), "p99_ms": round(cuts[98], 2), "by_message": by_message}


def measure(kind: str, model: Path, port: int, growth: int, scale: float = 1.0) -> dict[str, object]:
    """Every concurrency level against one server, then the memory figures (bots only)."""
    with tempfile.TemporaryDirectory(prefix="slmbot-bench-") as scratch:
        server = start(kind, port, model, Path(scratch))
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, server, settle_s=0.0 if kind == "echo" else 5.0)
            asyncio.run(load(url, 4, max(20, int(100 * scale)), f"{kind}-warmup"))
            result: dict[str, object] = {}
            for name, (conversations, messages) in CONCURRENCY.items():
                result[name] = asyncio.run(load(url, conversations, max(conversations, int(messages * scale)), f"{kind}-{name}"))
                log(f"{kind} {name}: {({k: v for k, v in result[name].items() if k != 'by_message'})}")
            if kind != "echo":
                workers = serving_processes(server, worker_count(kind))
                pids = [pid for worker, parsers in workers.items() for pid in (worker, *parsers)]
                before = [memory_mb(pid, "VmRSS") for pid in pids]
                asyncio.run(load(url, 16, growth, f"{kind}-growth"))
                after = [memory_mb(pid, "VmRSS") for pid in pids]
                result["workers"] = len(workers)
                result["parsers"] = sum(len(parsers) for parsers in workers.values())
                result["rss_mb"] = round(max(memory_mb(pid, "VmHWM") for pid in pids), 1)
                result["worker_rss_mb"] = round(max(memory_mb(pid, "VmHWM") for pid in workers), 1)
                result["rss_growth_pct"] = round(max((a - b) / b * 100 for a, b in zip(after, before)), 2)
                # The rest of RSS is shared libraries' pages (torch's code above all), shared by all processes.
                result["private_mb"] = round(max(memory_mb(pid, "RssAnon") for pid in pids), 1)
                result["worker_private_mb"] = round(max(sum(memory_mb(pid, "RssAnon") for pid in (w, *p)) for w, p in workers.items()), 1)
                log(f"{kind}: peak RSS {result['rss_mb']} MB ({result['private_mb']} MB private), growth over {growth} messages {result['rss_growth_pct']}%")
            return result
        finally:
            server.terminate()
            server.wait(timeout=60)


def table(results: dict[str, dict[str, object]], growth: int) -> str:
    lines = [
        "# Serving benchmark (python -m bench.serve)",
        "",
        "Example shop bot behind `slmbot run` (uvicorn + uvloop, 1 torch thread per worker), loaded over HTTP",
        "by one asyncio/aiohttp client process on the same 2-core machine. Each conversation plays a 7-turn",
        "script (order status with a digression, a return with slot filling) and starts over with a new id.",
        "1 worker: SQLite, in-process locks. 2 workers: PostgreSQL + Redis (FIFO turn queue per conversation).",
        "Each worker parses in a child process of its own (`[server] parse_process`), unless the row says 0 parsers.",
        f"Memory: peak RSS of the busiest process (worker or parser), and of the workers alone; growth: the largest RSS change over {growth} further",
        "messages after warm-up; private: anonymous memory at the end (RSS less the pages of shared libraries, which all",
        "processes share), of the busiest process and of a worker and its parser together.",
        f"{TARGETS}.",
        "",
        "| server | conversations | messages/s | p50 ms | p99 ms |",
        "|---|---|---|---|---|",
    ]
    for kind, result in results.items():
        for name in CONCURRENCY:
            row = result[name]
            assert isinstance(row, dict)
            lines.append(f"| {kind} | {name[1:]} | {row['per_second']} | {row['p50_ms']} | {row['p99_ms']} |")
    lines += [
        "",
        "Latency of each message of the script at 64 conversations (bots): which turns make the tail.",
        "",
        "| server | message | p50 ms | p99 ms | answers above the overall p99 |",
        "|---|---|---|---|---|",
    ]
    for kind, result in results.items():
        if kind != "echo":
            for text, row in result["c64"]["by_message"].items():  # type: ignore[index]
                lines.append(f"| {kind} | {text} | {row['p50_ms']} | {row['p99_ms']} | {row['over_p99']} |")
    lines += [
        "",
        "| server | workers | parsers | peak RSS MB | of a worker | private MB | worker + parser private MB | RSS growth % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind, result in results.items():
        if "rss_mb" in result:
            lines.append(
                f"| {kind} | {result['workers']} | {result['parsers']} | {result['rss_mb']} | {result['worker_rss_mb']} | {result['private_mb']} "
                f"| {result['worker_private_mb']} | {result['rss_growth_pct']} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "nlu", help="trained example-bot model (`slmbot train`)")
    parser.add_argument("--growth", type=int, default=20_000, help="messages over which RSS growth is measured")
    parser.add_argument("--only", default="echo,bot_1_worker,bot_2_workers")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not (args.model / "checkpoint.json").is_file():
        sys.exit(f"no model at {args.model}: run `slmbot train` first")
    results = {kind: measure(kind, args.model, args.port, args.growth) for kind in args.only.split(",")}
    publish("serve", results, table(results, args.growth), args.json)


if __name__ == "__main__":
    main()
