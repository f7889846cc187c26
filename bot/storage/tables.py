"""The database tables: conversations, their events (every message and decision) and model versions.

Schema changes go through an Alembic migration in ``bot/storage/migrations/versions``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Optional, Union

from sqlalchemy import JSON, Column, DateTime
from sqlmodel import Field, SQLModel


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _timestamp(index: bool = False) -> Any:
    return Field(default_factory=utc_now, sa_type=DateTime(timezone=True), index=index)


class Conversation(SQLModel, table=True):
    """One user on one channel; ``state`` is the flow engine's `DialogueState` as JSON."""

    id: str = Field(primary_key=True, max_length=300)
    channel: str = Field(max_length=50, index=True)
    sender: str = Field(max_length=255)
    created_at: datetime = _timestamp()
    updated_at: datetime = _timestamp(index=True)
    session: int = 1
    state: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    handed_off: bool = Field(default=False, index=True)


class Event(SQLModel, table=True):
    """Something that happened in a conversation, in order.

    ``kind`` is user (text + parse), bot (text + ``source``: template, generator, agent, system),
    action, slot, handoff, handback or session_started.
    """

    id: Optional[int] = Field(default=None, primary_key=True)
    conversation_id: str = Field(foreign_key="conversation.id", index=True, max_length=300)
    session: int = 1
    created_at: datetime = _timestamp()
    kind: str = Field(max_length=30)
    text: Optional[str] = None
    intent: Optional[str] = Field(default=None, max_length=200)
    confidence: Optional[float] = None
    entities: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    model_version: Optional[str] = Field(default=None, max_length=64)
    source: Optional[str] = Field(default=None, max_length=30)
    response: Optional[str] = Field(default=None, max_length=200)
    buttons: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    delivered: bool = True


@dataclass(slots=True)
class PendingEvent:
    """An `Event` of the turn being handled, before the store inserts it (and sets its ``id``).

    A plain object on purpose: building a table model (SQLModel's constructor, then SQLAlchemy's
    instrumented attributes) took ~30 µs per event, and the turns of a loaded server spent about
    a fifth of their CPU time on it; the store inserts rows with one Core statement anyway.
    Its fields are `Event`'s columns, with the same defaults (a test keeps the two in step).
    """

    conversation_id: str
    kind: str
    session: int = 1
    created_at: datetime = field(default_factory=utc_now)
    text: Optional[str] = None
    intent: Optional[str] = None
    confidence: Optional[float] = None
    entities: list[Any] = field(default_factory=list)
    model_version: Optional[str] = None
    source: Optional[str] = None
    response: Optional[str] = None
    buttons: list[Any] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    delivered: bool = True
    id: Optional[int] = None


AnyEvent = Union[Event, PendingEvent]
"""An event as the store writes it and redaction rewrites it: stored, or of the turn in progress."""


class ModelVersion(SQLModel, table=True):
    """A trained model in the registry; ``active`` marks the one being served.

    ``data_hash`` is the SHA-256 of its training data, ``parent`` the version that was live
    when it was trained, ``promoted_at`` when it last went live (rollback goes to the one before).
    """

    id: Optional[int] = Field(default=None, primary_key=True)
    kind: str = Field(max_length=30)
    version: str = Field(max_length=64, index=True)
    path: str
    created_at: datetime = _timestamp()
    metrics: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    active: bool = False
    data_hash: Optional[str] = Field(default=None, max_length=64)
    parent: Optional[str] = Field(default=None, max_length=64)
    promoted_at: Optional[datetime] = Field(default=None, sa_type=DateTime(timezone=True))


class Annotation(SQLModel, table=True):
    """A person's correction or verdict on a logged message; the log itself is never changed.

    On a user message: the right ``intent`` (existing or new) and/or ``entities`` (character
    spans of ``text``). On a bot message: a ``rating`` (good/bad) and/or the ``reply`` an agent
    would have given. ``text`` is the message as annotated, personal data redacted, so the
    example survives when retention deletes the conversation (``event_id`` becomes null).
    The newest annotation of an event is the one that counts.
    """

    id: Optional[int] = Field(default=None, primary_key=True)
    event_id: Optional[int] = Field(default=None, foreign_key="event.id", index=True, ondelete="SET NULL")
    text: str
    intent: Optional[str] = Field(default=None, max_length=200)
    entities: Optional[list[Any]] = Field(default=None, sa_column=Column(JSON, nullable=True))
    rating: Optional[str] = Field(default=None, max_length=10)
    reply: Optional[str] = None
    author: str = Field(max_length=255)
    created_at: datetime = _timestamp(index=True)
