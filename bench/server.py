"""Serving benchmark: whole REST turns (parse, flow, actions, store) through a real `slmbot run` server.

Starts the example bot as its own process (uvicorn, one torch thread), then plays the same
scripted order-status conversation from many senders at once and measures each turn's
latency as the client sees it. Run on SQLite (default) and on the local PostgreSQL:

    python -m bench.server [--database sqlite|postgresql] [--senders 16] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.timing import log

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SCRIPT = ["hi", "where is my order?", "what are your opening hours?", "B-2001", "I want to return the yoga mat from C-3310", "jane@example.com", "thanks, bye"]
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _database(kind: str, scratch: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{scratch}/bench.db"
    from sqlalchemy import create_engine, text

    with create_engine(POSTGRES).begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS slmbot_bench CASCADE; CREATE SCHEMA slmbot_bench"))
    return f"{POSTGRES}?options=-csearch_path%3Dslmbot_bench"


async def _wait_ready(client: httpx.AsyncClient, server: subprocess.Popen) -> None:
    for _ in range(300):
        if server.poll() is not None:
            raise RuntimeError("the server exited; see its output above")
        try:
            if (await client.get("/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("the server did not become ready in 60 s")


async def _converse(client: httpx.AsyncClient, sender: str, samples: list[float]) -> None:
    for text in SCRIPT:
        started = time.perf_counter()
        response = await client.post("/webhooks/rest/webhook", json={"sender": sender, "message": text})
        samples.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()


async def _load(url: str, server: subprocess.Popen, senders: int, rounds: int) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await _wait_ready(client, server)
        await _converse(client, "warmup", [])
        samples: list[float] = []
        started = time.perf_counter()
        for round_ in range(rounds):
            await asyncio.gather(*(_converse(client, f"r{round_}-s{i}", samples) for i in range(senders)))
        elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(samples, n=100)
    return {"turns": len(samples), "p50_ms": round(cuts[49], 1), "p99_ms": round(cuts[98], 1), "turns_per_s": round(len(samples) / elapsed, 1)}


def run(database: str, senders: int, rounds: int, model: Path, port: int) -> dict[str, float]:
    """Serve the example bot on ``database`` and load it with ``senders`` concurrent conversations."""
    with tempfile.TemporaryDirectory(prefix="slmbot-bench-") as scratch:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "DATABASE_URL": _database(database, Path(scratch))}
        command = [sys.executable, "-m", "bot", "run", "--config", str(ROOT / "config.toml"), "--model", str(model), "--port", str(port)]
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        try:
            return asyncio.run(_load(f"http://127.0.0.1:{port}", server, senders, rounds))
        finally:
            server.terminate()
            server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--senders", type=int, default=16, help="concurrent conversations")
    parser.add_argument("--rounds", type=int, default=5, help="times the senders start over with new ids")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "nlu", help="trained example-bot model (`slmbot train`)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not (args.model / "checkpoint.json").is_file():
        sys.exit(f"no model at {args.model}: run `slmbot train` first")
    results = {}
    for database in (["sqlite", "postgresql"] if args.database == "both" else [args.database]):
        log(f"{database}: {args.senders} senders x {args.rounds} rounds x {len(SCRIPT)} turns")
        results[database] = run(database, args.senders, args.rounds, args.model, args.port)
        log(f"  {results[database]}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "server.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Serving benchmark (python -m bench.server)",
        "",
        f"Example shop bot, one `slmbot run` process (uvicorn, 1 torch thread), {args.senders} concurrent REST",
        f"conversations x {args.rounds} rounds of a {len(SCRIPT)}-turn script (order status with a digression,",
        "a return with slot filling). Latency is per turn as the client sees it: parse, flow, actions, store.",
        "",
        "| database | turns | p50 ms | p99 ms | turns/s |",
        "|---|---|---|---|---|",
        *(f"| {db} | {r['turns']} | {r['p50_ms']} | {r['p99_ms']} | {r['turns_per_s']} |" for db, r in results.items()),
    ]
    (RESULTS / "server.md").write_text("\n".join(lines) + "\n")
    print(json.dumps(results) if args.json else "\n".join(lines))


if __name__ == "__main__":
    main()
