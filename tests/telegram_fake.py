"""A fake Telegram Bot API server on 127.0.0.1 for python-telegram-bot's real HTTP client.

Serves getMe, deleteWebhook/setWebhook, getUpdates (long polling, honouring offset),
sendMessage, sendPhoto and answerCallbackQuery; records every call. ``flood`` makes the next
sendMessage calls fail with HTTP 429 and a retry_after, as Telegram's flood control does.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from typing import Any, Callable
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

BOT_ID = 777
USER = {"id": 4242, "is_bot": False, "first_name": "Ann"}
CHAT = {"id": 4242, "type": "private", "first_name": "Ann"}


class FakeBotApi:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.updates: list[dict[str, Any]] = []
        self.flood = 0
        self.lock = threading.Lock()
        self.update_ids = itertools.count(1)
        self.message_ids = itertools.count(1000)
        self.app = FastAPI()
        self.app.add_api_route("/bot{token}/{method}", self.handle, methods=["GET", "POST"])
        self.url = ""  # set once it is served (see `serving`)

    # --- what tests use ------------------------------------------------------------------
    def message_update(self, text: str | None = None, **fields: Any) -> dict[str, Any]:
        message = {"message_id": next(self.message_ids), "date": int(time.time()), "chat": CHAT, "from": USER, **fields}
        if text is not None:
            message["text"] = text
        return {"update_id": next(self.update_ids), "message": message}

    def button_update(self, data: str) -> dict[str, Any]:
        message = {"message_id": next(self.message_ids), "date": int(time.time()), "chat": CHAT, "text": "(keyboard)"}
        query = {"id": f"cq{next(self.message_ids)}", "from": USER, "chat_instance": "ci", "data": data, "message": message}
        return {"update_id": next(self.update_ids), "callback_query": query}

    def queue(self, update: dict[str, Any]) -> None:
        """Make ``update`` available to getUpdates (polling mode)."""
        with self.lock:
            self.updates.append(update)

    def called(self, method: str) -> list[dict[str, Any]]:
        with self.lock:
            return [params for name, params in self.calls if name == method]

    def sent_texts(self) -> list[str]:
        return [params["text"] for params in self.called("sendMessage") if not params.get("_flooded")]

    def wait_for(self, condition: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; calls so far: {self.calls}")
            time.sleep(0.05)

    # --- the Bot API -------------------------------------------------------------------------
    async def handle(self, token: str, method: str, request: Request) -> JSONResponse:
        params = await _params(request)
        with self.lock:
            flooded = method == "sendMessage" and self.flood > 0
            if flooded:
                self.flood -= 1
            self.calls.append((method, {**params, "_flooded": flooded} if flooded else params))
        if flooded:
            return JSONResponse(
                {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 1", "parameters": {"retry_after": 1}}, 429
            )
        if method == "getUpdates":
            return _ok(await self._updates(int(params.get("offset", 0) or 0), float(params.get("timeout", 0) or 0)))
        if method == "getMe":
            return _ok({"id": BOT_ID, "is_bot": True, "first_name": "Shop", "username": "shop_bot"})
        if method in ("sendMessage", "sendPhoto"):
            message = {"message_id": next(self.message_ids), "date": int(time.time()), "chat": CHAT, "from": {"id": BOT_ID, "is_bot": True, "first_name": "Shop"}}
            return _ok({**message, "text": params.get("text", "")} if method == "sendMessage" else message)
        return _ok(True)

    async def _updates(self, offset: int, timeout: float) -> list[dict[str, Any]]:
        deadline = time.monotonic() + min(timeout, 2.0)
        while True:
            with self.lock:
                self.updates = [u for u in self.updates if u["update_id"] >= offset]
                ready = list(self.updates)
            if ready or time.monotonic() >= deadline:
                return ready
            await asyncio.sleep(0.05)


def _ok(result: Any) -> JSONResponse:
    return JSONResponse({"ok": True, "result": result})


async def _params(request: Request) -> dict[str, Any]:
    """python-telegram-bot posts urlencoded fields whose complex values are JSON; accept JSON bodies too."""
    if request.headers.get("content-type", "").startswith("application/json"):
        return await request.json()
    params: dict[str, Any] = {}
    for key, value in parse_qsl((await request.body()).decode()):
        try:
            params[key] = json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value
        except json.JSONDecodeError:
            params[key] = value
    return params
