"""`slmbot logs purge`: conversations idle longer than the retention period are deleted, or
anonymized (kept for statistics and training, but with personal data redacted and the
customer's id, which names them on their channel, replaced)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from bot.privacy import Redactor, redact_event
from bot.storage.store import ConversationStore
from bot.storage.tables import Conversation, utc_now

ANONYMOUS = "anonymized"


def purge(store: ConversationStore, days: float, anonymize: bool, redactor: Redactor, now: datetime | None = None) -> int:
    """Delete or anonymize every conversation with no activity in the last ``days``; how many."""
    ids = store.idle_since((now or utc_now()) - timedelta(days=days))
    if not anonymize:
        store.delete(ids)
        return len(ids)
    for conversation_id in ids:
        old = store.conversation(conversation_id)
        if old is None or old.channel == ANONYMOUS:
            continue
        # The channel is kept (statistics per channel); the state goes, as it holds slot values.
        new = Conversation(
            id=f"{ANONYMOUS}:{uuid.uuid4().hex}", channel=old.channel, sender=ANONYMOUS, created_at=old.created_at,
            updated_at=old.updated_at, session=old.session, state={}, handed_off=False,
        )
        store.rewrite(conversation_id, new, lambda event: redact_event(event, redactor))
    return len(ids)
