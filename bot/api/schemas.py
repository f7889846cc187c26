"""Request field types shared by several routes."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

MAX_MESSAGE_CHARS = 10_000

# Whitespace-only text is empty text: it gets a 422, not a turn.
MessageText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MESSAGE_CHARS)]
# Any printable id up to 255 characters (no control characters, no surrounding blanks).
SenderId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")]
