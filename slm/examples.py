"""Labelled utterances and the conversion between entity spans and BIO tag sequences."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence


@dataclass(frozen=True, order=True)
class Span:
    """An entity occupying characters ``text[start:end]``."""

    start: int
    end: int
    label: str


@dataclass(frozen=True)
class Example:
    """One training or evaluation utterance: text, intent and character-offset entity spans."""

    text: str
    intent: str
    spans: tuple[Span, ...] = field(default_factory=tuple)
    origin: str = field(default="", compare=False)
    """Where the example was read (``file:line``), so later errors can point back to it."""


class AlignmentError(ValueError):
    """A span boundary falls inside a token, so it cannot be expressed as BIO tags."""


def bio_to_spans(tags: Sequence[str], offsets: Sequence[tuple[int, int]]) -> list[Span]:
    """Turn per-token BIO tags into character spans with conlleval chunk semantics.

    An ``I-X`` that follows ``O`` or a different type starts a new chunk, exactly as
    conlleval and seqeval count it, so scores computed on spans match theirs.
    """
    spans: list[Span] = []
    label: str | None = None
    start = end = 0
    for tag, (tok_start, tok_end) in zip(tags, offsets, strict=True):
        prefix, _, kind = tag.partition("-")
        continues = prefix == "I" and kind == label
        if label is not None and not continues:
            spans.append(Span(start, end, label))
            label = None
        if prefix in ("B", "I") and not continues:
            label, start = kind, tok_start
        if label is not None:
            end = tok_end
    if label is not None:
        spans.append(Span(start, end, label))
    return spans


def spans_to_bio(spans: Sequence[Span], offsets: Sequence[tuple[int, int]]) -> list[str]:
    """Tag each token ``B-``/``I-``/``O`` from character spans.

    Raises:
        AlignmentError: a span starts or ends inside a token, or covers no token.
    """
    tags = ["O"] * len(offsets)
    starts = {s: i for i, (s, _) in enumerate(offsets)}
    ends = {e: i for i, (_, e) in enumerate(offsets)}
    for span in spans:
        first, last = starts.get(span.start), ends.get(span.end)
        if first is None or last is None or last < first:
            raise AlignmentError(
                f"entity '{span.label}' at characters {span.start}-{span.end} does not align with token boundaries"
            )
        tags[first] = f"B-{span.label}"
        for i in range(first + 1, last + 1):
            tags[i] = f"I-{span.label}"
    return tags
