"""The safety gate for generated replies: in customer service a fluent reply with a wrong order
number is worse than no reply, so a generated reply is used only when nothing in it is invented.

A reply is rejected when it is empty, repetitive, scored below the threshold, or states a
value (a number, an id, a price, an email, a known entity value such as a product, or a
capitalised name) that appears neither in the conversation's context nor in the bot's own
templates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NUMBER_LIKE = re.compile(r"[\w@.+-]*\d[\w@.+-]*")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
WORD = re.compile(r"[A-Za-z][\w'-]*")
SENTENCE_START = re.compile(r"(?:^|[.!?]\s+)([A-Za-z][\w'-]*)")


@dataclass(frozen=True)
class SafetyGate:
    """``known_values``: the bot's entity values; ``known_words``: the words and numbers of its templates (lower case)."""

    min_score: float
    known_values: frozenset[str] = frozenset()
    known_words: frozenset[str] = frozenset()

    def check(self, text: str, score: float, context: str) -> str | None:
        """Why ``text`` must not be sent, or None when it may be."""
        words = WORD.findall(text)
        if not words:
            return "empty reply"
        if score < self.min_score:
            return f"score {score:.2f} is below {self.min_score:.2f}"
        if _repetitive([w.lower() for w in words]):
            return "repetitive reply"
        lowered = context.lower()
        for value in [*EMAIL.findall(text), *(v.strip(".,:;-") for v in NUMBER_LIKE.findall(text))]:
            if value and value.lower() not in lowered and value.lower() not in self.known_words:
                return f"states '{value}', which is not in the context"
        reply = text.lower()
        for value in self.known_values:
            if re.search(rf"(?<!\w){re.escape(value)}(?!\w)", reply) and value not in lowered:
                return f"mentions '{value}', which is not in the context"
        starts = {m.group(1) for m in SENTENCE_START.finditer(text)}
        for word in words:
            if word[0].isupper() and word not in starts and word.lower() not in self.known_words and word.lower() not in lowered:
                return f"names '{word}', which is neither in the context nor in the bot's templates"
        return None


def template_words(texts: list[str]) -> frozenset[str]:
    """Lower-case words and number-like tokens of the bot's own templates (allowed in generated replies)."""
    return frozenset(w.lower() for text in texts for w in [*WORD.findall(text), *(v.strip(".,:;-") for v in NUMBER_LIKE.findall(text))])


def _repetitive(words: list[str]) -> bool:
    trigrams = list(zip(words, words[1:], words[2:]))
    runs = any(a == b == c for a, b, c in trigrams)
    return runs or len(set(trigrams)) < len(trigrams)
