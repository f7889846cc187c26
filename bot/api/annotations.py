"""Review API: the label queue and annotations of logged messages (the admin UI builds on it).

Every route needs ``Authorization: Bearer $SLMBOT_API_TOKEN``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from bot.annotation import AnnotationError, Correction, annotate, queue_to_label
from bot.api.deps import RuntimeDep, TokenDep
from bot.api.schemas import MessageText, SenderId
from bot.privacy import Redactor
from bot.storage.store import as_utc
from bot.storage.tables import Annotation

router = APIRouter(tags=["annotations"], dependencies=[TokenDep])


class SpanIn(BaseModel):
    start: int = Field(ge=0)
    end: int = Field(gt=0)
    entity: str


class AnnotationIn(BaseModel):
    """Set what applies: intent/entities on a user message, rating/reply on a bot message."""

    author: SenderId
    intent: str | None = None
    entities: list[SpanIn] | None = None
    rating: str | None = Field(default=None, description="good or bad")
    reply: MessageText | None = Field(default=None, description="What an agent would have answered instead.")


class AnnotationOut(BaseModel):
    id: int
    event_id: int | None
    text: str
    intent: str | None
    entities: list[dict[str, Any]] | None
    rating: str | None
    reply: str | None
    author: str
    at: datetime


class QueueItem(BaseModel):
    event_id: int
    conversation_id: str
    text: str
    intent: str | None
    confidence: float | None
    uncertainty: float
    live_intent: str | None = Field(
        None, description="the live model's intent, where it disagrees with the model version that logged the message"
    )
    entities: list[dict[str, Any]]


def annotation_out(annotation: Annotation) -> AnnotationOut:
    assert annotation.id is not None
    fields = annotation.model_dump(exclude={"created_at"})
    return AnnotationOut(**fields, at=as_utc(annotation.created_at))


@router.get("/annotations/queue", response_model=list[QueueItem])
async def queue(runtime: RuntimeDep, limit: int = Query(20, ge=1, le=500)) -> list[QueueItem]:
    """Unannotated user messages the live model was least sure of, most uncertain first, each text once."""
    queue = await queue_to_label(runtime.store, runtime.manager.understanding, limit)
    return [
        QueueItem(event_id=q.event.id or 0, conversation_id=q.event.conversation_id, text=q.event.text or "",
                  intent=q.event.intent, confidence=q.event.confidence, uncertainty=round(q.uncertainty, 4),
                  live_intent=q.live_intent, entities=q.event.entities)
        for q in queue
    ]


@router.post("/events/{event_id}/annotations", response_model=AnnotationOut, status_code=201)
async def add_annotation(event_id: int, body: AnnotationIn, runtime: RuntimeDep) -> AnnotationOut:
    """Record a correction of a logged message; the message itself stays as it was logged."""
    event = await to_thread.run_sync(runtime.store.event, event_id)
    if event is None:
        raise HTTPException(404, f"no event {event_id}")
    entities = [span.model_dump() for span in body.entities] if body.entities is not None else None
    correction = Correction(body.author, body.intent, entities, body.rating, body.reply)
    try:
        annotation = annotate(event, correction, Redactor(runtime.config.privacy.patterns))
    except AnnotationError as error:
        raise HTTPException(422, str(error)) from None
    return annotation_out(await to_thread.run_sync(runtime.store.annotate, annotation))


@router.get("/events/{event_id}/annotations", response_model=list[AnnotationOut])
async def event_annotations(event_id: int, runtime: RuntimeDep) -> list[AnnotationOut]:
    """Every annotation of one message, oldest first (the newest counts)."""
    return [annotation_out(a) for a in await to_thread.run_sync(runtime.store.annotations, [event_id])]
