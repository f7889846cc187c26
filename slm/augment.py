"""Entity-value substitution: training examples whose entities take other values of their type.

A test set's entities are mostly values the training data never showed (song and film titles,
playlist names, cities), and a tagger that has seen each value in one sentence learns the value
as much as the context around it. Swapping, while training, an entity's text for another value
the training data gives the same entity type teaches the context: the sentence stays, the value
varies. Values are only ever taken from the training data itself.
"""

from __future__ import annotations

import random
from typing import Sequence

from slm.examples import Example, Span


class EntitySwap:
    """Draws a variant of an example: each of its entities, with ``probability``, takes another
    value of its type from ``examples``, the rest of the text unchanged and the spans moved with it."""

    def __init__(self, examples: Sequence[Example], probability: float, seed: int) -> None:
        values: dict[str, set[str]] = {}
        for example in examples:
            for span in example.spans:
                values.setdefault(span.label, set()).add(example.text[span.start : span.end])
        self.values = {label: sorted(texts) for label, texts in values.items()}
        self.probability = probability
        self.random = random.Random(seed)

    def __call__(self, example: Example) -> Example:
        """A variant of ``example`` (the example itself when no entity was swapped)."""
        if not example.spans or self.probability <= 0:
            return example
        text, spans, cursor, swapped = "", [], 0, False
        for span in sorted(example.spans):
            value = example.text[span.start : span.end]
            if self.random.random() < self.probability:
                value, swapped = self.random.choice(self.values.get(span.label, [value])), True
            text += example.text[cursor : span.start]
            spans.append(Span(len(text), len(text) + len(value), span.label))
            text += value
            cursor = span.end
        if not swapped:
            return example
        return Example(text + example.text[cursor:], example.intent, tuple(spans), example.origin)
