"""create_app(runtime) -> FastAPI: REST channel, parse API, transcripts and agent handoff, OpenAPI docs.

Errors become clear 4xx/503 answers here and nowhere else: a database that is down, or a parsing
process that cannot be started, gives 503, and since a turn is stored before it is answered, a
503 means the message was not taken.
"""

from __future__ import annotations

import asyncio
import os
from contextlib import asynccontextmanager
from typing import AsyncIterator

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, RedirectResponse

from bot.admin import routes as admin
from bot.api import annotations, conversations, model
from bot.channels import rest, telegram, web
from bot.parse_process import ParseProcessError
from bot.reload import watch_models
from bot.runtime import BotRuntime
from bot.storage.store import StorageUnavailable


def telegram_channel(runtime: BotRuntime, polling: bool) -> telegram.TelegramChannel | None:
    """The Telegram channel when enabled (``polling`` forces it on, in long-polling mode).

    Raises:
        ConfigError: the token or, for webhooks, the secret is missing from the environment.
    """
    settings = runtime.config.telegram
    if not (settings.enabled or polling):
        return None
    polling = polling or settings.mode == "polling"
    return telegram.TelegramChannel(runtime.manager, settings, telegram.bot_token(), os.environ.get(telegram.SECRET_VARIABLE), polling)


def create_app(runtime: BotRuntime, telegram_polling: bool = False) -> FastAPI:
    """The HTTP app serving ``runtime``; closing the app closes the runtime.

    Raises:
        ConfigError: an enabled channel lacks its secrets.
    """
    bot_on_telegram = telegram_channel(runtime, telegram_polling)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        to_thread.current_default_thread_limiter().total_tokens = runtime.config.server.worker_threads
        if bot_on_telegram is not None:
            await bot_on_telegram.start()
        interval = runtime.config.server.model_poll_seconds
        watcher = asyncio.create_task(watch_models(runtime, interval)) if interval > 0 else None
        try:
            yield
        finally:
            if watcher is not None:
                watcher.cancel()
            if bot_on_telegram is not None:
                await bot_on_telegram.stop()
            await runtime.close()

    app = FastAPI(
        title="slmbot",
        description="A chatbot on small language models trained from scratch: REST channel, NLU parse, handoff.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.telegram = bot_on_telegram
    app.include_router(model.router)
    app.include_router(rest.router)
    app.include_router(conversations.router)
    app.include_router(annotations.router)
    app.include_router(admin.router)
    if bot_on_telegram is not None:
        app.include_router(telegram.router)
        runtime.manager.add_output(bot_on_telegram)
    if runtime.config.web.enabled:
        app.include_router(web.router)
        runtime.manager.add_output(web.WebChannel(runtime.coordinator))
        origins = list(runtime.config.web.allowed_origins)
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"], allow_headers=["Content-Type"])

    @app.exception_handler(admin.LoginRequired)
    async def login_required(_request: Request, _error: admin.LoginRequired) -> RedirectResponse:
        return RedirectResponse("/admin/login", status_code=303)

    @app.exception_handler(StorageUnavailable)
    async def storage_unavailable(_request: Request, error: StorageUnavailable) -> JSONResponse:
        return JSONResponse({"detail": f"the conversation store is unavailable; the message was not accepted ({error})"}, 503)

    @app.exception_handler(ParseProcessError)
    async def parsing_unavailable(_request: Request, error: ParseProcessError) -> JSONResponse:
        # A message is parsed before anything of its turn is stored.
        return JSONResponse({"detail": f"the message could not be parsed and was not accepted ({error})"}, 503)

    return app
