"""`slmbot export` and `slmbot import`: labelled examples in and out of the store as JSONL.

One JSON object per line in the NLU ``.jsonl`` format (``text``, ``intent``, ``entities`` with
character offsets), personal data redacted, so a file can be trained on as it stands, or
corrected elsewhere and imported back. ``event_id`` links an example to the logged message it
came from; ``annotated`` says whether a person labelled it or it is the live model's parse.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, TextIO

from bot.annotation import AnnotationError, labelled_example
from bot.privacy import Redactor, redact_event
from bot.storage.store import ConversationStore
from bot.storage.tables import Annotation
from bot.understanding import parse_payload
from slm.errors import DataError


def latest_labels(store: ConversationStore) -> list[Annotation]:
    """The newest intent annotation of every annotated message, plus every imported example."""
    latest: dict[object, Annotation] = {}
    for annotation in store.annotations():
        if annotation.intent is not None:
            latest[annotation.event_id if annotation.event_id is not None else ("import", annotation.id)] = annotation
    return list(latest.values())


def export_examples(store: ConversationStore, redactor: Redactor, out: TextIO, everything: bool = False) -> int:
    """Write the annotated examples (``everything``: also every other logged user message, as
    the live model parsed it) to ``out``; how many were written. Payloads (``/intent``) are not language
    and are left out."""
    labelled = latest_labels(store)
    for annotation in labelled:
        _write(out, annotation.text, annotation.intent, annotation.entities or [], annotation.event_id, True)
    written = len(labelled)
    if everything:
        done = {a.event_id for a in labelled}
        for event in store.user_messages():
            if event.id in done or not event.text or parse_payload(event.text) is not None:
                continue
            redact_event(event, redactor)  # a detached copy: the stored message is untouched
            _write(out, event.text, event.intent, event.entities, event.id, False)
            written += 1
    return written


def _write(out: TextIO, text: str, intent: str | None, entities: list, event_id: int | None, annotated: bool) -> None:
    record = {
        "text": text,
        "intent": intent,
        "entities": [{"start": e["start"], "end": e["end"], "entity": e["entity"]} for e in entities],
        "event_id": event_id,
        "annotated": annotated,
    }
    out.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_examples(path: Path, author: str, redactor: Redactor, store: ConversationStore) -> Iterator[Annotation]:
    """Annotations from a JSONL file of labelled examples, checked line by line.

    Raises:
        DataError: file and line of the first malformed example; nothing is imported then.
    """
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(path, number, f"not JSON: {error.msg}") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str) or not isinstance(record.get("intent"), str):
            raise DataError(path, number, 'expected {"text": str, "intent": str, "entities": [...]}')
        event_id = record.get("event_id")
        linked = event_id if isinstance(event_id, int) and store.event(event_id) is not None else None
        try:
            yield labelled_example(record["text"], record["intent"], list(record.get("entities") or []), author, redactor, linked)
        except (AnnotationError, AttributeError, TypeError) as error:
            raise DataError(path, number, str(error)) from None


def import_examples(path: Path, author: str, redactor: Redactor, store: ConversationStore) -> int:
    """Store every example of ``path`` as an annotation by ``author``; all or none."""
    annotations = list(read_examples(path, author, redactor, store))
    for annotation in annotations:
        store.annotate(annotation)
    return len(annotations)
