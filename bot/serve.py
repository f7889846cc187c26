"""`slmbot run`: one server process, or N workers that each bind the port with SO_REUSEPORT.

uvicorn's own ``--workers`` shares one listening socket, and the kernel may then pile new
connections onto one busy worker; a socket per worker with SO_REUSEPORT lets the kernel spread
connections evenly. Workers share nothing in memory, so more than one needs Redis (turn order,
fan-out) and a database server (SQLite serializes writers across processes).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bot.config import ConfigError, load_config
from bot.heap import freeze_heap
from bot.process_memory import bound_kernel_cache, tune_malloc
from bot.runtime import BotRuntime

@dataclass(frozen=True)
class ServeOptions:
    config: Path
    host: str
    port: int
    workers: int = 1
    model: Path | None = None
    telegram_polling: bool = False
    data_dir: Path | None = None


def check_scale_out(options: ServeOptions, redis_url: str, database_url: str) -> None:
    """Refuse a multi-worker setup that would break turn order or contend on one file.

    Raises:
        ConfigError: the reason and the fix.
    """
    if options.workers < 1:
        raise ConfigError("--workers must be at least 1")
    if options.workers == 1:
        return
    if not redis_url:
        raise ConfigError("more than one worker needs Redis for per-conversation turn order and WebSocket fan-out: set REDIS_URL")
    if database_url.startswith("sqlite"):
        raise ConfigError("more than one worker needs a database server (SQLite serializes writers): set DATABASE_URL to PostgreSQL")
    if options.telegram_polling:
        raise ConfigError("Telegram long polling allows one poller per bot: use one worker, or webhook mode")


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((host, port))
    listener.listen(2048)
    return listener


def serve_runtime(runtime: BotRuntime, options: ServeOptions) -> None:
    """Serve ``runtime`` on this process's own socket until SIGINT/SIGTERM.

    Raises:
        ConfigError: an enabled channel lacks its secrets.
    """
    import uvicorn

    from bot.logs import configure_logging
    from bot.server import create_app

    # One torch thread per worker: with more, workers fight over the cores and latency collapses.
    # A worker that parses in a child process and generates no replies has not imported torch.
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    tune_malloc()
    bound_kernel_cache()
    app = create_app(runtime, options.telegram_polling)
    configure_logging()
    freeze_heap()
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, timeout_graceful_shutdown=10))
    server.run(sockets=[listening_socket(options.host, options.port)])


def run_worker(options: ServeOptions) -> None:
    """A worker process: load the bot (the parent has checked it and migrated the database) and serve."""
    config = load_config(options.config)
    runtime = BotRuntime.load(config, model_dir=options.model, data_dir=options.data_dir, parse_in_child=config.server.parse_process)
    serve_runtime(runtime, options)


def serve(runtime: BotRuntime, options: ServeOptions) -> int:
    """Serve ``runtime`` here (one worker) or in ``options.workers`` processes; the exit code.

    ``runtime`` was loaded by the caller, so a broken project fails once with a clear message
    and the database is migrated once, not raced by every worker.
    """
    if options.workers == 1:
        serve_runtime(runtime, options)
        return 0
    asyncio.run(runtime.close())
    # Every worker writes its metrics to these files so /metrics on any of them sums all workers;
    # a folder we made is removed once they have stopped (one the operator named is theirs).
    own_metrics = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    if own_metrics:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="slmbot-metrics-")
    try:
        return _supervise(options)
    finally:
        if own_metrics:
            shutil.rmtree(os.environ.pop("PROMETHEUS_MULTIPROC_DIR"), ignore_errors=True)


def _supervise(options: ServeOptions) -> int:
    """Start ``options.workers`` worker processes and wait; all stop when one dies or on a signal."""
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=run_worker, args=(options,), name=f"slmbot-worker-{i}") for i in range(options.workers)]
    for worker in workers:
        worker.start()

    stopping = False

    def stop(_signal: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for worker in workers:
            if worker.is_alive():
                worker.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # A worker that dies on its own leaves the server degraded in a way nobody would notice: stop them all.
    multiprocessing.connection.wait([w.sentinel for w in workers])
    crashed = [w.exitcode for w in workers if w.exitcode is not None] if not stopping else []
    stop(signal.SIGTERM, None)
    for worker in workers:
        worker.join()
    # Workers asked to stop exit by re-raising SIGTERM (uvicorn does); that is a clean shutdown.
    return next((code for code in crashed if code), 1) if crashed else 0
