"""Transcripts and human handoff: agents read conversations, reply to customers and hand back.

Every route here needs ``Authorization: Bearer $SLMBOT_API_TOKEN``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from bot.api.deps import RuntimeDep, TokenDep
from bot.api.schemas import MessageText, SenderId
from bot.manager import ConversationNotFound, NotHandedOff
from bot.storage.store import as_utc

router = APIRouter(tags=["conversations"], dependencies=[TokenDep])


class EventOut(BaseModel):
    id: int
    session: int
    at: datetime
    kind: str
    text: str | None = None
    intent: str | None = None
    confidence: float | None = None
    entities: list[dict[str, Any]] = []
    model_version: str | None = None
    source: str | None = None
    response: str | None = None
    buttons: list[dict[str, Any]] = []
    data: dict[str, Any] = {}


class TranscriptOut(BaseModel):
    id: str
    channel: str
    sender: str
    session: int
    handed_off: bool
    updated_at: datetime
    events: list[EventOut]


class ConversationSummary(BaseModel):
    id: str
    channel: str
    sender: str
    updated_at: datetime


class AgentMessage(BaseModel):
    text: MessageText
    agent: SenderId = Field(description="Who is writing (kept with the message).")


class HandBack(BaseModel):
    agent: SenderId


class Delivered(BaseModel):
    conversation_id: str
    text: str
    source: str


@router.get("/conversations/{conversation_id}", response_model=TranscriptOut)
async def transcript(conversation_id: str, runtime: RuntimeDep) -> TranscriptOut:
    """The whole conversation: every user message with its parse, every bot message with its source."""
    conversation = await to_thread.run_sync(runtime.store.conversation, conversation_id)
    if conversation is None:
        raise HTTPException(404, f"no conversation '{conversation_id}'")
    events = await to_thread.run_sync(runtime.store.events, conversation_id)
    return TranscriptOut(
        id=conversation.id,
        channel=conversation.channel,
        sender=conversation.sender,
        session=conversation.session,
        handed_off=conversation.handed_off,
        updated_at=as_utc(conversation.updated_at),
        events=[EventOut(**e.model_dump(exclude={"conversation_id", "created_at", "delivered"}), at=as_utc(e.created_at)) for e in events],
    )


@router.get("/handoffs", response_model=list[ConversationSummary])
async def handoffs(runtime: RuntimeDep) -> list[ConversationSummary]:
    """Conversations waiting for an agent, longest-waiting first."""
    waiting = await to_thread.run_sync(runtime.store.handed_off)
    return [ConversationSummary(id=c.id, channel=c.channel, sender=c.sender, updated_at=as_utc(c.updated_at)) for c in waiting]


@router.post("/conversations/{conversation_id}/agent", response_model=Delivered)
async def agent_reply(conversation_id: str, message: AgentMessage, runtime: RuntimeDep) -> Delivered:
    """An agent's reply, sent to the customer on their channel (or with their next REST request)."""
    try:
        reply = await runtime.manager.agent_reply(conversation_id, message.text, message.agent)
    except ConversationNotFound:
        raise HTTPException(404, f"no conversation '{conversation_id}'") from None
    except NotHandedOff as error:
        raise HTTPException(409, str(error)) from None
    return Delivered(conversation_id=conversation_id, text=reply.text, source=reply.source)


@router.post("/conversations/{conversation_id}/handback", response_model=Delivered)
async def hand_back(conversation_id: str, body: HandBack, runtime: RuntimeDep) -> Delivered:
    """The agent is done: the bot answers this customer again."""
    try:
        reply = await runtime.manager.hand_back(conversation_id, body.agent)
    except ConversationNotFound:
        raise HTTPException(404, f"no conversation '{conversation_id}'") from None
    except NotHandedOff as error:
        raise HTTPException(409, str(error)) from None
    return Delivered(conversation_id=conversation_id, text=reply.text, source=reply.source)
