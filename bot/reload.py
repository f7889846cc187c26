"""Hot reload: a running server switches to newly promoted models (NLU and reply generator) by itself.

Every worker polls the registry (one indexed query per model kind every few seconds, so it
works across processes and hosts alike), loads a new live version in a worker thread while
requests keep being served by the old one, checks it, then swaps it in with one assignment.
A message being parsed, or a reply being generated, finishes on the model it started with;
the next one uses the new model. A version that fails to load is logged and the old one stays.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

from anyio import to_thread

from bot.heap import freeze_heap
from bot.parse_process import ParseProcess
from bot.runtime import BotRuntime, load_reply_generator, load_understanding
from bot.understanding import Understanding

log = logging.getLogger(__name__)


async def _keep_nothing(_replaced: Any) -> None:
    """A replaced model that holds nothing but memory goes with its last reference."""


@dataclass(frozen=True)
class ServedModel:
    """One kind of model a runtime serves: the one it serves now (which has a ``version``), how to
    load and install another, and how to let go of the one replaced (a parsing process first
    answers the texts already sent to it)."""

    kind: str
    current: Callable[[], Any]
    load: Callable[[Path], Any]
    install: Callable[[Any], None]
    retire: Callable[[Any], Awaitable[None]] = _keep_nothing

    def version(self) -> str:
        return str(self.current().version)


def served_models(runtime: BotRuntime) -> list[ServedModel]:
    """The NLU model always; the reply generator when the project has it on."""
    manager = runtime.manager
    served = [
        ServedModel(
            "nlu",
            lambda: manager.understanding,
            lambda directory: _load_understanding(runtime, directory),
            lambda understanding: setattr(manager, "understanding", understanding),
            lambda replaced: replaced.close(),
        )
    ]
    if manager.generator is not None:
        served.append(
            ServedModel(
                "generator",
                lambda: manager.generator,
                lambda directory: load_reply_generator(runtime.config, runtime.domain, runtime.store, directory),
                lambda replies: setattr(manager, "generator", replies),
            )
        )
    return served


async def watch_models(runtime: BotRuntime, interval_s: float) -> None:
    """Run until cancelled, switching models whenever the database says another version is live."""
    failed: dict[str, str] = {}
    served = served_models(runtime)
    while True:
        await asyncio.sleep(interval_s)
        for model in served:
            await _follow(runtime, model, failed)


async def _follow(runtime: BotRuntime, model: ServedModel, failed: dict[str, str]) -> None:
    """Switch ``model`` to the registry's live version of its kind, if that is another one that loads."""
    try:
        live = await to_thread.run_sync(runtime.store.active_model, model.kind)
    except Exception:  # the database is down: keep serving, try again next time
        log.warning("model watch: the registry is unreachable; keeping %s %s", model.kind, model.version())
        return
    if live is None or live.version in (model.version(), failed.get(model.kind)):
        return
    try:
        loaded = await to_thread.run_sync(model.load, Path(live.path))
    except Exception as error:  # corrupt files, unknown intents: the old model keeps serving
        failed[model.kind] = live.version
        log.error("model watch: %s version %s not loaded, keeping %s: %s", model.kind, live.version, model.version(), error)
        return
    previous, replaced = model.version(), model.current()
    model.install(loaded)
    try:
        await model.retire(replaced)
    except Exception as error:  # the new model serves already; the watch goes on
        log.error("model watch: %s version %s not released cleanly: %s", model.kind, previous, error)
    freeze_heap()  # one full collection (~0.1 s) lets the old model go
    log.info("model watch: now serving %s version %s (was %s)", model.kind, live.version, previous)


def _load_understanding(runtime: BotRuntime, directory: Path) -> Understanding:
    current = runtime.manager.understanding
    # A worker that parses in a child process goes on doing so with the new model.
    return load_understanding(directory, current.lexicon, runtime.domain.intents, isinstance(current, ParseProcess))
