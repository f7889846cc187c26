"""The values that travel through the runtime: what a user said, what the bot understood, what it replies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class UserMessage:
    """One message from a user on some channel; ``sender`` is the channel's id for that user."""

    sender: str
    text: str
    channel: str = "rest"


@dataclass(frozen=True)
class Entity:
    """An entity in a message; ``value`` is the canonical value after synonym mapping."""

    entity: str
    value: str
    start: int
    end: int
    text: str
    confidence: float = 1.0
    extractor: str = "model"


@dataclass(frozen=True)
class Parse:
    """What the bot understood of one message."""

    text: str
    intent: str
    confidence: float
    ranking: tuple[tuple[str, float], ...] = ()
    entities: tuple[Entity, ...] = ()
    model_version: str = ""

    def entity_values(self) -> dict[str, str]:
        """Entity name -> value; with several of a kind the last one wins (people correct themselves)."""
        return {e.entity: e.value for e in self.entities}


@dataclass(frozen=True)
class Button:
    """A quick reply: ``payload`` is sent back as the user's message when pressed."""

    title: str
    payload: str


@dataclass(frozen=True)
class BotReply:
    """One message the bot (or a human agent) sends; ``source`` says who wrote it."""

    text: str
    buttons: tuple[Button, ...] = ()
    image: str | None = None
    response: str | None = None
    source: str = "template"
    data: dict[str, Any] = field(default_factory=dict)
