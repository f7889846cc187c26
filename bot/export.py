"""`slmbot export`: logged user messages as NLU training examples, personal data redacted.

One JSON object per line in the NLU ``.jsonl`` format (``text``, ``intent``, ``entities`` with
character offsets), so a file can be reviewed and corrected elsewhere and trained on directly;
``confidence``, ``model_version`` and ``at`` say what the live model thought and when.
Button payloads (``/intent``) are left out: they are not language.
"""

from __future__ import annotations

import json
from typing import TextIO

from bot.privacy import Redactor, redact_event
from bot.storage.store import ConversationStore, as_utc
from bot.understanding import parse_payload


def export_messages(store: ConversationStore, redactor: Redactor, out: TextIO) -> int:
    """Write every logged user message to ``out``; how many were written."""
    written = 0
    for event in store.user_messages():
        if not event.text or parse_payload(event.text) is not None:
            continue
        redact_event(event, redactor)  # a detached copy: the stored message is untouched
        record = {
            "text": event.text,
            "intent": event.intent,
            "entities": [{"start": e["start"], "end": e["end"], "entity": e["entity"]} for e in event.entities],
            "confidence": event.confidence,
            "model_version": event.model_version,
            "at": as_utc(event.created_at).isoformat(),
        }
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        written += 1
    return written
