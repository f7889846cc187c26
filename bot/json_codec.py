"""JSON on a turn's hot path: orjson (C) instead of the standard library's encoder.

A turn turns its dialogue state into JSON several times (the flow engine works on copies, the
store writes it) and each event's JSON columns once; with the standard library that was ~8% of
the time a loaded worker held the GIL. The output differs only in spacing and in writing
non-ASCII characters as they are; keys that are not strings become strings, as json.dumps does.
"""

from __future__ import annotations

from typing import Any

import orjson

OPTIONS = orjson.OPT_NON_STR_KEYS
loads = orjson.loads


def encode(value: Any) -> bytes:
    """``value`` as UTF-8 JSON (objects that are not JSON types are written as their attributes)."""
    return orjson.dumps(value, default=vars, option=OPTIONS)


def dumps(value: Any) -> str:
    """`encode` as text, for SQLAlchemy's JSON columns."""
    return encode(value).decode()


def plain(value: Any) -> Any:
    """``value`` (dataclasses included) as fresh dicts, lists and scalars that share nothing with it."""
    return loads(encode(value))
