"""Hot reload: a running server switches to a newly promoted NLU model by itself.

Every worker polls the registry (one indexed query every few seconds, so it works across
processes and hosts alike), loads a new live version in a worker thread while requests keep
being served by the old one, checks it knows every intent of the project, then swaps it in
with one assignment. A message being parsed finishes on the model it started with; the next
batch uses the new one. A version that fails to load is logged and the old one stays.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from anyio import to_thread

from bot.runtime import BotRuntime, load_nlu
from bot.understanding import Understanding

log = logging.getLogger(__name__)


async def watch_models(runtime: BotRuntime, interval_s: float) -> None:
    """Run until cancelled, switching models whenever the database says another version is live."""
    failed: str | None = None
    while True:
        await asyncio.sleep(interval_s)
        try:
            live = await to_thread.run_sync(runtime.store.active_model, "nlu")
        except Exception:  # the database is down: keep serving, try again next time
            log.warning("model watch: the registry is unreachable; keeping %s", runtime.manager.understanding.version)
            continue
        if live is None or live.version in (runtime.manager.understanding.version, failed):
            continue
        try:
            understanding = await to_thread.run_sync(_load, runtime, Path(live.path))
        except Exception as error:  # corrupt files, unknown intents: the old model keeps serving
            failed = live.version
            log.error("model watch: version %s not loaded, keeping %s: %s", live.version, runtime.manager.understanding.version, error)
            continue
        previous = runtime.manager.understanding.version
        runtime.manager.understanding = understanding
        log.info("model watch: now serving NLU version %s (was %s)", understanding.version, previous)


def _load(runtime: BotRuntime, directory: Path) -> Understanding:
    nlu, version = load_nlu(directory)
    unknown = set(runtime.domain.intents) - set(nlu.intents)
    if unknown:
        raise ValueError(f"it does not know intent(s) {', '.join(sorted(unknown))}")
    return Understanding(nlu, runtime.manager.understanding.lexicon, version)
