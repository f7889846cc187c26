"""Rasa's REST channel: ``POST /webhooks/rest/webhook`` with ``{"sender", "message"}``.

Answers Rasa's shape, ``[{"recipient_id", "text", "buttons"}]``, so existing Rasa REST clients
work unchanged. REST cannot push, so agent messages written meanwhile go out first in the
next response.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from bot.api.deps import RuntimeDep
from bot.api.schemas import MessageText, SenderId
from bot.types import BotReply, UserMessage

router = APIRouter(tags=["channels"])
CHANNEL = "rest"


class RestMessage(BaseModel):
    sender: SenderId = Field(description="The user's id in your system (1-255 printable characters).")
    message: MessageText = Field(description="What the user wrote (1 to 10,000 characters).")
    metadata: dict[str, Any] | None = None


class RestButton(BaseModel):
    title: str
    payload: str


class RestReply(BaseModel):
    recipient_id: str
    text: str
    buttons: list[RestButton] | None = None
    image: str | None = None


def to_rest(recipient: str, reply: BotReply) -> RestReply:
    buttons = [RestButton(title=b.title, payload=b.payload) for b in reply.buttons] or None
    return RestReply(recipient_id=recipient, text=reply.text, buttons=buttons, image=reply.image)


@router.post("/webhooks/rest/webhook", response_model=list[RestReply], response_model_exclude_none=True)
async def webhook(message: RestMessage, runtime: RuntimeDep) -> list[RestReply]:
    """One user message in, the bot's replies out (none while a human agent has the conversation)."""
    turn = await runtime.manager.handle(UserMessage(message.sender, message.message, CHANNEL))
    return [to_rest(message.sender, reply) for reply in turn.replies]
