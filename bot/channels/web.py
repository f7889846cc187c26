"""The embeddable web chat: the widget's files, its WebSocket, a REST fallback and history.

A page embeds ``<script src="https://BOT/widget.js" data-bot-url="https://BOT" defer></script>``.
The widget keeps a random session id in localStorage; that id is the conversation's sender, so
it doubles as the capability to read the conversation's history. Every reply goes to the
connection that asked directly, and to the conversation's other connections (another tab, a
socket on another worker) through the coordinator's fan-out, tagged with the asking
connection so nobody sees a message twice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from anyio import to_thread
from fastapi import APIRouter, HTTPException, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, ValidationError

from bot.api.deps import RuntimeDep
from bot.api.schemas import MessageText
from bot.coordination import Coordinator
from bot.manager import DialogueManager, conversation_id
from bot.runtime import BotRuntime
from bot.storage.store import StorageUnavailable, as_utc
from bot.storage.tables import utc_now
from bot.types import BotReply, UserMessage

log = logging.getLogger(__name__)
router = APIRouter(tags=["web chat"])
CHANNEL = "web"
STATIC = Path(__file__).resolve().parent.parent / "static"
SESSION_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"
SessionId = Annotated[str, Field(pattern=SESSION_PATTERN, description="The widget's random session id (8-64 of A-Z a-z 0-9 _ -).")]
POLICY_VIOLATION = 1008


class WebMessage(BaseModel):
    """What the widget sends: over the socket ``{"text"}``; over REST also the session."""

    text: MessageText


class WebRestMessage(WebMessage):
    session: SessionId


class WebButton(BaseModel):
    title: str
    payload: str


class WebOut(BaseModel):
    """One chat message as the widget renders it."""

    type: str = Field(description="bot (bot or agent wrote it), user (the customer, e.g. from another tab), typing or done.")
    text: str = ""
    buttons: list[WebButton] = []
    image: str | None = None
    source: str | None = None
    at: datetime | None = None


def bot_out(reply: BotReply) -> WebOut:
    buttons = [WebButton(title=b.title, payload=b.payload) for b in reply.buttons]
    return WebOut(type="bot", text=reply.text, buttons=buttons, image=reply.image, source=reply.source, at=utc_now())


def origin_allowed(origin: str | None, host: str | None, allowed: tuple[str, ...]) -> bool:
    """Pages on the allowlist, and the bot's own pages (the demo shop), may chat.

    Requests without an Origin header come from programs, not pages, and are let through: the
    allowlist exists to stop other websites from embedding the widget in their visitors' browsers.
    """
    if origin is None:
        return True
    return origin in allowed or (host is not None and urlsplit(origin).netloc == host)


def check_origin(request: Request, runtime: BotRuntime) -> None:
    if not origin_allowed(request.headers.get("origin"), request.headers.get("host"), runtime.config.web.allowed_origins):
        raise HTTPException(403, f"origin {request.headers.get('origin')} may not use this bot's web chat (see [channels.web] allowed_origins)")


class WebChannel:
    """Pushes agent messages to every open widget of a conversation, on any worker."""

    name = CHANNEL

    def __init__(self, coordinator: Coordinator) -> None:
        self.coordinator = coordinator

    async def send(self, recipient: str, reply: BotReply) -> bool:
        listeners = await self.coordinator.publish(conversation_id(CHANNEL, recipient), {"messages": [bot_out(reply).model_dump(mode="json")]})
        return listeners > 0


async def take_turn(manager: DialogueManager, session: str, text: str, connection: str) -> list[WebOut]:
    """Run the turn and share it with the conversation's other open widgets."""
    turn = await manager.handle(UserMessage(session, text, CHANNEL))
    replies = [bot_out(reply) for reply in turn.replies]
    shared = [WebOut(type="user", text=text, at=utc_now()), *replies]
    # One publish per turn: on Redis that is one round trip, however many replies there are.
    messages = [message.model_dump(mode="json") for message in shared]
    await manager.coordinator.publish(conversation_id(CHANNEL, session), {"origin": connection, "messages": messages})
    return replies


@router.get("/widget.js", include_in_schema=False)
async def widget_script() -> FileResponse:
    return FileResponse(STATIC / "widget.js", media_type="text/javascript", headers={"Cache-Control": "public, max-age=300"})


@router.get("/widget.css", include_in_schema=False)
async def widget_style() -> FileResponse:
    return FileResponse(STATIC / "widget.css", media_type="text/css", headers={"Cache-Control": "public, max-age=300"})


@router.get("/", include_in_schema=False)
async def demo_shop() -> FileResponse:
    """A demo shop page with the widget embedded, as a customer's website would do it."""
    return FileResponse(STATIC / "demo.html", media_type="text/html")


@router.post("/web/message", response_model=list[WebOut], response_model_exclude_none=True)
async def rest_fallback(message: WebRestMessage, request: Request, runtime: RuntimeDep) -> list[WebOut]:
    """The widget's fallback while its WebSocket is down: one message in, the replies out."""
    check_origin(request, runtime)
    return await take_turn(runtime.manager, message.session, message.text, connection="rest")


@router.get("/web/history", response_model=list[WebOut], response_model_exclude_none=True)
async def history(session: Annotated[str, Query(pattern=SESSION_PATTERN)], request: Request, runtime: RuntimeDep) -> list[WebOut]:
    """The conversation so far, for a reloaded page; a pressed button shows as its title."""
    check_origin(request, runtime)
    events = await to_thread.run_sync(lambda: runtime.store.events(conversation_id(CHANNEL, session), kinds=("user", "bot")))
    shown: list[WebOut] = []
    titles: dict[str, str] = {}
    for event in events:
        if event.kind == "user":
            shown.append(WebOut(type="user", text=titles.get(event.text or "", event.text or ""), at=as_utc(event.created_at)))
            continue
        buttons = [WebButton(**b) for b in event.buttons]
        titles = {b.payload: b.title for b in buttons}
        shown.append(WebOut(type="bot", text=event.text or "", buttons=buttons, source=event.source, at=as_utc(event.created_at)))
    return shown


@router.websocket("/ws/chat")
async def chat_socket(websocket: WebSocket, session: Annotated[str, Query(pattern=SESSION_PATTERN)]) -> None:
    """``{"text": ...}`` in; ``typing``, the replies (``bot``) and ``done`` out, plus what other tabs say."""
    runtime: BotRuntime = websocket.app.state.runtime
    if not origin_allowed(websocket.headers.get("origin"), websocket.headers.get("host"), runtime.config.web.allowed_origins):
        await websocket.close(POLICY_VIOLATION, "origin not allowed")
        return
    await websocket.accept()
    connection, sending = uuid.uuid4().hex, asyncio.Lock()

    async def send(message: WebOut | dict[str, Any]) -> None:
        async with sending:
            await websocket.send_json(message.model_dump(mode="json", exclude_none=True) if isinstance(message, WebOut) else message)

    async with runtime.coordinator.listen(conversation_id(CHANNEL, session)) as fanout:

        async def forward() -> None:
            while True:
                shared = await fanout.get()
                if shared.get("origin") != connection:
                    for message in shared["messages"]:
                        await send(message)

        forwarder = asyncio.create_task(forward())
        try:
            while True:
                await _answer(await websocket.receive_json(), runtime.manager, session, connection, send)
        except WebSocketDisconnect:
            pass
        finally:
            forwarder.cancel()


async def _answer(raw: Any, manager: DialogueManager, session: str, connection: str, send: Any) -> None:
    try:
        message = WebMessage.model_validate(raw)
    except ValidationError as error:
        await send({"type": "error", "message": f"expected {{\"text\": \"1 to 10,000 characters\"}}: {error.errors()[0]['msg']}"})
        return
    await send(WebOut(type="typing"))
    try:
        replies = await take_turn(manager, session, message.text, connection)
    except StorageUnavailable:
        log.exception("web chat %s: message not stored", session)
        await send({"type": "error", "message": "the bot cannot take messages right now; please try again shortly"})
        return
    for reply in replies:
        await send(reply)
    await send(WebOut(type="done"))
