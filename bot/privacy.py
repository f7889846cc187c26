"""Personal data out of logged text: emails, phone numbers, payment cards, IBANs, own patterns.

Each finding is replaced by a typed placeholder (``<EMAIL>``, ``<PHONE>``, ``<CARD>``,
``<IBAN>``, or the configured pattern's name), and entity spans of the text are moved along,
so a redacted example still trains the slot tagger: an entity that was an email address now
covers ``<EMAIL>``. Card numbers must pass the Luhn check and IBANs the ISO 13616 mod-97
check, so order numbers, dates and amounts stay readable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from bot.storage.tables import AnyEvent

EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
# Written compact or in groups of four: DE89370400440532013000, DE89 3704 0044 0532 0130 00.
IBAN = re.compile(r"(?<![\w])[A-Z]{2}\d{2}(?:(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?|[A-Z0-9]{11,30})(?![\w])", re.IGNORECASE)
# Neither starts nor ends inside a longer run of digit groups (an IBAN, a longer number).
NOT_AFTER_DIGITS = r"(?<![\w+])(?<!\d[ .-])"
NOT_BEFORE_DIGITS = r"(?![\w])(?![ .-]\d)"
CARD = re.compile(NOT_AFTER_DIGITS + r"(?<!-)\d(?:[ -]?\d){12,18}" + NOT_BEFORE_DIGITS + r"(?!-)")
PHONE = re.compile(
    NOT_AFTER_DIGITS + r"(?:"
    r"(?:\+|00)\d{1,3}[\s.-]?(?:\(0\))?[\s.-]?\(?\d{1,4}\)?(?:[\s.-]?\d{1,4}){1,4}"  # +44 20 7946 0958, 0049 (0)30 1234567
    r"|\(?0\d{1,4}\)?[\s.-]?\d{2,4}(?:[\s.-]?\d{2,4}){1,3}"  # 030 1234567, (020) 7946 0958, 07700 900123
    r"|\(?\d{3}\)?[\s.-]\d{3}[\s.-]\d{4}"  # (555) 123-4567, 555.123.4567
    r")" + NOT_BEFORE_DIGITS
)
DATE = re.compile(r"^(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})$")


def luhn_valid(digits: str) -> bool:
    """The payment-card checksum: doubling every second digit from the right, the sum ends in 0."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(candidate: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to numbers, mod 97 == 1."""
    compact = candidate.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _card(text: str) -> bool:
    digits = re.sub(r"[ -]", "", text)
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _phone(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    return 7 <= len(digits) <= 15 and not DATE.match(text.strip())


@dataclass(frozen=True)
class Finding:
    """One piece of personal data: where it was and what kind."""

    start: int
    end: int
    kind: str


@dataclass(frozen=True)
class Redacted:
    """A redacted text, its entity spans moved to match, and what was found."""

    text: str
    spans: tuple[tuple[int, int], ...]
    findings: tuple[Finding, ...]


class Redactor:
    """Finds and replaces personal data; ``patterns`` adds the project's own (name -> regex)."""

    def __init__(self, patterns: Mapping[str, str] | None = None) -> None:
        self.detectors: list[tuple[str, re.Pattern[str], object]] = [
            ("EMAIL", EMAIL, None),
            ("IBAN", IBAN, iban_valid),
            ("CARD", CARD, _card),
            ("PHONE", PHONE, _phone),
        ]
        for name, pattern in (patterns or {}).items():
            self.detectors.append((name.upper(), re.compile(pattern), None))

    def find(self, text: str) -> list[Finding]:
        """Non-overlapping findings in text order; on overlap the earlier detector wins."""
        taken: list[Finding] = []
        for kind, pattern, check in self.detectors:
            for match in pattern.finditer(text):
                if check is not None and not check(match.group()):  # type: ignore[operator]
                    continue
                if all(match.end() <= f.start or match.start() >= f.end for f in taken):
                    taken.append(Finding(match.start(), match.end(), kind))
        return sorted(taken, key=lambda f: f.start)

    def redact(self, text: str, spans: Sequence[tuple[int, int]] = ()) -> Redacted:
        """``text`` with every finding replaced by ``<KIND>``; ``spans`` (start, end) moved along.

        A span boundary inside a finding snaps to the placeholder's edge, so an entity that
        was (part of) an email address covers ``<EMAIL>`` afterwards.
        """
        findings = self.find(text)
        if not findings:
            return Redacted(text, tuple(spans), ())
        pieces, cursor = [], 0
        moved: list[tuple[int, int, int, int]] = []  # old start, old end, new start, new end
        for finding in findings:
            pieces.append(text[cursor : finding.start])
            new_start = sum(len(p) for p in pieces)
            placeholder = f"<{finding.kind}>"
            pieces.append(placeholder)
            moved.append((finding.start, finding.end, new_start, new_start + len(placeholder)))
            cursor = finding.end
        pieces.append(text[cursor:])

        def shift(offset: int, is_end: bool) -> int:
            delta = 0
            for old_start, old_end, new_start, new_end in moved:
                if offset <= old_start:
                    break
                if offset < old_end or (is_end and offset == old_end):
                    return new_end if is_end else new_start
                delta = new_end - old_end
            return offset + delta

        new_spans = tuple((shift(start, False), shift(end, True)) for start, end in spans)
        return Redacted("".join(pieces), new_spans, tuple(findings))


def redact_event(event: AnyEvent, redactor: Redactor) -> None:
    """Redact a stored message in place: its text, its entities' spans and values, and the
    details of actions and slots (which repeat what the customer typed)."""
    if event.kind in ("action", "slot"):
        event.data = {}
        return
    if not event.text:
        return
    entities = list(event.entities or [])
    redacted = redactor.redact(event.text, [(e["start"], e["end"]) for e in entities])
    if not redacted.findings:
        return
    event.text = redacted.text
    moved = []
    for entity, (start, end) in zip(entities, redacted.spans):
        words = redacted.text[start:end]
        changed = words != entity.get("text")
        moved.append({**entity, "start": start, "end": end, "text": words, "value": words if changed else entity["value"]})
    event.entities = moved
