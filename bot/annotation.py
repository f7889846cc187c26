"""Annotating logged messages, and choosing which ones are worth a person's time.

An annotation of a user message always carries complete labels: what the annotator changed,
and for the rest what the live model predicted (accepting a prediction is a label too). Its
text and entity spans are stored redacted, so it can train models and outlive the
conversation it came from.

The label queue (active learning) puts first the messages on which two model versions
disagree: logged under an earlier model, the live one now gives another intent, so the
message sits where the models keep moving the boundary. Then the messages the live model was
least sure of: the entropy of the stored intent ranking, normalised to 0..1, and among equals
the lower top confidence. Identical texts (case and spacing aside) are offered once.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from anyio import to_thread

from bot.privacy import Redactor
from bot.storage.store import ConversationStore
from bot.storage.tables import Annotation, Event
from bot.understanding import Understanding, parse_payload

RATINGS = ("good", "bad")
CANDIDATES = 5000
"""The newest unannotated messages the label queue chooses from."""
DISAGREEMENT_CHECKS = 500
"""How many messages logged under earlier model versions the live model re-reads per queue."""
LABEL = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,199}$")


class AnnotationError(ValueError):
    """The annotation does not fit the message (the message says what is wrong)."""


@dataclass(frozen=True)
class Correction:
    """What a person says about one logged message; None leaves a field as it is."""

    author: str
    intent: str | None = None
    entities: list[dict[str, Any]] | None = None
    rating: str | None = None
    reply: str | None = None


def annotate(event: Event, correction: Correction, redactor: Redactor) -> Annotation:
    """The annotation ``correction`` makes of ``event``, checked and redacted.

    Raises:
        AnnotationError: nothing to record, a field that does not apply to this kind of
            message, an invalid label, or an entity span outside the text.
    """
    text = event.text or ""
    if event.kind == "user":
        if correction.rating is not None or correction.reply is not None:
            raise AnnotationError("ratings and better replies apply to bot messages; this is a user message")
        intent = correction.intent if correction.intent is not None else event.intent
        if intent is None or not LABEL.match(intent):
            raise AnnotationError(f"intent must be a name of letters, digits and _ (got {intent!r})")
        entities = correction.entities if correction.entities is not None else [
            {"start": e["start"], "end": e["end"], "entity": e["entity"]} for e in event.entities
        ]
        _check_spans(entities, text)
        redacted = redactor.redact(text, [(e["start"], e["end"]) for e in entities])
        moved = [{"start": s, "end": e, "entity": entity["entity"]} for entity, (s, e) in zip(entities, redacted.spans)]
        return Annotation(event_id=event.id, text=redacted.text, intent=intent, entities=moved, author=correction.author)
    if event.kind == "bot":
        if correction.intent is not None or correction.entities is not None:
            raise AnnotationError("intents and entities apply to user messages; this is a bot message")
        if correction.rating is None and correction.reply is None:
            raise AnnotationError("a bot message is annotated with a rating (good or bad) and/or a better reply")
        if correction.rating is not None and correction.rating not in RATINGS:
            raise AnnotationError(f"rating must be good or bad (got {correction.rating!r})")
        reply = redactor.redact(correction.reply).text if correction.reply is not None else None
        return Annotation(
            event_id=event.id, text=redactor.redact(text).text, rating=correction.rating, reply=reply, author=correction.author
        )
    raise AnnotationError(f"only user and bot messages can be annotated, not '{event.kind}' events")


def labelled_example(
    text: str, intent: str, entities: list[dict[str, Any]], author: str, redactor: Redactor, event_id: int | None = None
) -> Annotation:
    """A labelled example given as text (an import), linked to the logged message it came from when known.

    Raises:
        AnnotationError: as `annotate`.
    """
    message = Event(id=event_id, conversation_id="", kind="user", text=text, intent=intent, entities=[])
    return annotate(message, Correction(author, intent, entities), redactor)


def _check_spans(entities: list[dict[str, Any]], text: str) -> None:
    for entity in entities:
        start, end, label = entity.get("start"), entity.get("end"), entity.get("entity")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
            raise AnnotationError(f"entity span {start}..{end} is not inside the text (0..{len(text)})")
        if not isinstance(label, str) or not LABEL.match(label):
            raise AnnotationError(f"entity type must be a name of letters, digits and _ (got {label!r})")
    spans = sorted((e["start"], e["end"]) for e in entities)
    if any(a_end > b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:])):
        raise AnnotationError("entity spans overlap")


def uncertainty(event: Event) -> float:
    """Normalised entropy (0: certain, 1: uniform) of the intent ranking stored with the message."""
    scores = [float(confidence) for _, confidence in (event.data or {}).get("ranking", [])]
    total = sum(scores)
    if len(scores) < 2 or total <= 0:
        return 0.0 if event.confidence is None else 1.0 - event.confidence
    probabilities = [s / total for s in scores if s > 0]
    return -sum(p * math.log(p) for p in probabilities) / math.log(len(scores))


def informativeness(uncertainty: float, disagreement: bool) -> float:
    """How much labelling a message should teach: disagreement between model versions outranks
    any uncertainty (normalised entropy, 0..1), which orders the rest."""
    return uncertainty + (1.0 if disagreement else 0.0)


@dataclass(frozen=True)
class QueueEntry:
    """A message worth labelling, and why."""

    event: Event
    uncertainty: float
    live_intent: str | None = None
    """The live model's intent where it disagrees with the model version that logged the message."""

    @property
    def score(self) -> float:
        return informativeness(self.uncertainty, self.live_intent is not None)


async def disagreements(candidates: list[Event], live: Understanding, limit: int = DISAGREEMENT_CHECKS) -> dict[int, str]:
    """The live model's intent, by event id, for messages an earlier model version read differently.

    Re-reads at most ``limit`` of them (the first in ``candidates``), in one batch.
    """
    older = [
        e for e in candidates
        if e.id is not None and e.text and e.model_version not in (None, live.version) and parse_payload(e.text) is None
    ][:limit]
    parses = await live.submit_all([e.text or "" for e in older])
    return {e.id: p.intent for e, p in zip(older, parses) if p.intent != e.intent and e.id is not None}


def label_queue(candidates: list[Event], limit: int, disagreeing: dict[int, str] | None = None) -> list[QueueEntry]:
    """The ``limit`` most informative messages to label, most informative first, each text once.

    Args:
        disagreeing: `disagreements` of the candidates (none considered when omitted).
    """
    disagreeing = disagreeing or {}
    entries = [
        QueueEntry(event, uncertainty(event), disagreeing.get(event.id) if event.id is not None else None)
        for event in candidates
        if event.text and parse_payload(event.text) is None
    ]
    entries.sort(key=lambda q: (-q.score, q.event.confidence if q.event.confidence is not None else 0.0))
    queue: list[QueueEntry] = []
    seen = set()
    for entry in entries:
        key = " ".join((entry.event.text or "").lower().split())
        if key in seen:
            continue
        seen.add(key)
        queue.append(entry)
        if len(queue) == limit:
            break
    return queue


async def queue_to_label(store: ConversationStore, live: Understanding, limit: int) -> list[QueueEntry]:
    """The label queue as reviewers see it: the newest unannotated messages, ranked by
    `label_queue` with the live model's `disagreements`."""
    candidates = await to_thread.run_sync(store.unannotated_user_messages, CANDIDATES)
    return label_queue(candidates, limit, await disagreements(candidates, live))
