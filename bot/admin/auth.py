"""Who may use /admin: accounts from the environment, signed session cookies with expiry, CSRF tokens.

``SLMBOT_ADMIN_USERS`` lists accounts as ``name=hash`` separated by commas, each hash made by
`slmbot admin hash-password` (PBKDF2-SHA256, 600,000 rounds, random salt). The session cookie
holds the user, an expiry and a CSRF token, signed with HMAC-SHA256 under a key derived from
``SLMBOT_SECRET_KEY`` (or, unset, from the account list, so every worker agrees without
configuration). Every form carries the CSRF token and every POST is checked against it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass

USERS_VARIABLE = "SLMBOT_ADMIN_USERS"
SECRET_VARIABLE = "SLMBOT_SECRET_KEY"
ROUNDS = 600_000


def hash_password(password: str, rounds: int = ROUNDS) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, rounds)
    return f"pbkdf2_sha256${rounds}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, rounds, salt, digest = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        computed = hashlib.pbkdf2_hmac("sha256", password.encode(), _unb64(salt), int(rounds))
    except ValueError:
        return False
    return hmac.compare_digest(computed, _unb64(digest))


def accounts() -> dict[str, str]:
    """name -> password hash, from the environment (empty: /admin is closed)."""
    found = {}
    for entry in os.environ.get(USERS_VARIABLE, "").split(","):
        name, _, stored = entry.strip().partition("=")
        if name and stored:
            found[name] = stored
    return found


@dataclass(frozen=True)
class Session:
    user: str
    expires: float
    csrf: str


def _key() -> bytes:
    base = os.environ.get(SECRET_VARIABLE) or os.environ.get(USERS_VARIABLE, "")
    return hashlib.sha256(b"slmbot-admin-session:" + base.encode()).digest()


def issue(user: str, hours: float) -> str:
    """A signed cookie value for a fresh session of ``user``."""
    body = _b64(json.dumps({"user": user, "expires": time.time() + hours * 3600, "csrf": secrets.token_urlsafe(24)}).encode())
    return f"{body}.{_b64(hmac.new(_key(), body.encode(), hashlib.sha256).digest())}"


def read(cookie: str | None, now: float | None = None) -> Session | None:
    """The session in ``cookie``; None when absent, tampered with or expired."""
    if not cookie or "." not in cookie:
        return None
    body, signature = cookie.rsplit(".", 1)
    expected = _b64(hmac.new(_key(), body.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(signature, expected):
        return None
    try:
        data = json.loads(_unb64(body))
        session = Session(str(data["user"]), float(data["expires"]), str(data["csrf"]))
    except (ValueError, KeyError):
        return None
    return session if session.expires > (now or time.time()) else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
