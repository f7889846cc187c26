"""Message -> `Parse`: the trained NLU model combined with the author's regexes, lookups and synonyms.

Pattern and lookup matches are the author's explicit knowledge (an order id always looks like
``A-1042``), so where one overlaps a model entity the match wins; synonyms then map every value
to its canonical form. Button payloads such as ``/order_status{"order_id": "A-1042"}`` skip
the model, as in Rasa, and so does Rasa's ``/intent@0.3``: a parse with that confidence, which
lets a conversation test drive the fallback without hunting for a message the model happens to
be unsure of.
"""

from __future__ import annotations

import asyncio
import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Awaitable

from bot.batching import MicroBatcher
from bot.types import Entity, Parse
from slm.intents_yaml import LexiconEntry
from slm.manifest import NLULabels

if TYPE_CHECKING:  # torch: only a worker that parses itself loads the model
    from slm.nlu import NLUModel, ParseResult

PAYLOAD = re.compile(r"^/(?P<intent>[A-Za-z_][\w.-]*)(?:@(?P<confidence>[01](?:\.\d+)?))?(?P<entities>\{.*\})?$", re.S)


@dataclass
class Lexicon:
    """Compiled regexes, lookup lists and synonyms from ``intents/*.yml``."""

    patterns: list[tuple[str, re.Pattern[str]]] = field(default_factory=list)
    synonyms: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_entries(cls, entries: list[LexiconEntry]) -> Lexicon:
        lexicon = cls()
        for entry in entries:
            values = [text for _, text in entry.items]
            if entry.kind == "regex":
                lexicon.patterns.extend((entry.name, re.compile(pattern)) for pattern in values)
            elif entry.kind == "lookup":
                # Longest first, so "wireless headphones" wins over "headphones".
                alternatives = "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))
                lexicon.patterns.append((entry.name, re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)))
            else:
                lexicon.synonyms.update({v.lower(): entry.name for v in [*values, entry.name]})
        return lexicon

    def matches(self, text: str) -> list[Entity]:
        """Non-overlapping pattern/lookup matches, earliest and longest first."""
        found = sorted(
            (Entity(name, m.group(), m.start(), m.end(), m.group(), 1.0, "lexicon") for name, pattern in self.patterns for m in pattern.finditer(text) if m.group()),
            key=lambda e: (e.start, -(e.end - e.start)),
        )
        kept: list[Entity] = []
        for entity in found:
            if not kept or entity.start >= kept[-1].end:
                kept.append(entity)
        return kept

    def canonical(self, entity: Entity) -> Entity:
        """``entity`` with its value mapped through the synonyms."""
        value = self.synonyms.get(entity.value.lower(), entity.value)
        return entity if value == entity.value else Entity(entity.entity, value, entity.start, entity.end, entity.text, entity.confidence, entity.extractor)


def merge_entities(model: list[Entity], matched: list[Entity]) -> list[Entity]:
    """Model entities that overlap no lexicon match, plus all lexicon matches, in text order."""
    kept = [e for e in model if all(e.end <= m.start or e.start >= m.end for m in matched)]
    return sorted(kept + matched, key=lambda e: e.start)


class Understanding(ABC):
    """Turns text into a `Parse` for async code: what the dialogue manager and the admin pages use.

    `LocalUnderstanding` parses with a model loaded in this process; `bot.parse_process.ParseProcess`
    hands the texts to a child process, so that the serving worker never imports torch.
    """

    def __init__(self, lexicon: Lexicon, version: str, labels: NLULabels) -> None:
        self.lexicon, self.version = lexicon, version
        self.intents, self.entity_types = labels.intents, labels.entity_types

    @abstractmethod
    def submit(self, text: str) -> Awaitable[Parse]:
        """The parse of ``text``, batched with the texts submitted meanwhile."""

    async def submit_all(self, texts: list[str]) -> list[Parse]:
        """`submit` for several texts (they join the same batches)."""
        return list(await asyncio.gather(*(self.submit(text) for text in texts)))

    @property
    @abstractmethod
    def parsing(self) -> str:
        """Where `submit` parses, for /health."""

    @property
    def available(self) -> bool:
        """Whether texts can be parsed now (/health says unavailable when not)."""
        return True

    async def close(self) -> None:
        """Release what parsing holds beyond this object (a child process, say)."""


class LocalUnderstanding(Understanding):
    """Parses with the model in this process: `submit` on the event loop, `parse` and
    `parse_many` elsewhere (they block, so async code calls them from a worker thread)."""

    def __init__(self, nlu: NLUModel, lexicon: Lexicon, version: str) -> None:
        super().__init__(lexicon, version, NLULabels.from_tags(nlu.intents, nlu.tags))
        self.nlu = nlu
        # Concurrent turns share one forward pass: the texts that arrive while a batch runs make the next.
        self.batcher = MicroBatcher(self.parse_many)

    def parse(self, text: str) -> Parse:
        """Intent, calibrated confidence, ranking and entities of ``text``."""
        return self.parse_many([text])[0]

    def parse_many(self, texts: list[str]) -> list[Parse]:
        """`parse` for several texts with one forward pass of the model (payloads skip it)."""
        payloads = [parse_payload(text) for text in texts]
        typed = [text for text, payload in zip(texts, payloads) if payload is None]
        results = iter(self.nlu.predict(typed) if typed else [])
        return [self._typed(text, next(results)) if payload is None else self._payload(payload) for text, payload in zip(texts, payloads)]

    def submit(self, text: str) -> Awaitable[Parse]:
        """``text`` joins the next batch, parsed in a worker thread."""
        return self.batcher.submit(text)

    @property
    def parsing(self) -> str:
        return "worker"

    def _payload(self, payload: Parse) -> Parse:
        return replace(payload, model_version=self.version)

    def _typed(self, text: str, result: ParseResult) -> Parse:
        model_entities = [Entity(e.entity, e.value, e.start, e.end, e.value, e.confidence) for e in result.entities]
        entities = merge_entities(model_entities, self.lexicon.matches(text))
        ranking = tuple((str(r["name"]), float(r["confidence"])) for r in result.ranking)
        return Parse(text, result.intent, result.confidence, ranking, tuple(self.lexicon.canonical(e) for e in entities), self.version)


def parse_payload(text: str) -> Parse | None:
    """``/intent``, ``/intent{"entity": "value"}`` as a certain parse, ``/intent@0.3...`` with
    that confidence (0 to 1); None for ordinary text."""
    match = PAYLOAD.match(text.strip())
    if not match:
        return None
    confidence = float(match.group("confidence") or 1.0)
    if confidence > 1.0:
        return None
    entities: tuple[Entity, ...] = ()
    if match.group("entities"):
        try:
            values = json.loads(match.group("entities"))
        except json.JSONDecodeError:
            return None
        if not isinstance(values, dict):
            return None
        entities = tuple(Entity(str(k), str(v), 0, 0, str(v), 1.0, "payload") for k, v in values.items())
    return Parse(text, match.group("intent"), confidence, ((match.group("intent"), confidence),), entities)
