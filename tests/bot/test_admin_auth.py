"""Accounts, session cookies and their expiry for the review pages."""

import pytest

from bot.admin import auth


def test_passwords_are_salted_pbkdf2_and_verified():
    stored = auth.hash_password("correct horse", rounds=1000)
    assert stored.startswith("pbkdf2_sha256$1000$") and stored != auth.hash_password("correct horse", rounds=1000)
    assert auth.verify_password("correct horse", stored)
    assert not auth.verify_password("wrong", stored) and not auth.verify_password("correct horse", "garbage")


def test_sessions_are_signed_and_expire(monkeypatch):
    monkeypatch.setenv(auth.USERS_VARIABLE, "sam=" + auth.hash_password("x", rounds=1000))
    cookie = auth.issue("sam", hours=1)
    session = auth.read(cookie)
    assert session is not None and session.user == "sam" and len(session.csrf) > 20
    body, signature = cookie.rsplit(".", 1)
    assert auth.read(body + "." + signature[::-1]) is None  # tampered
    assert auth.read(cookie, now=session.expires + 1) is None  # expired
    monkeypatch.setenv(auth.SECRET_VARIABLE, "another key")
    assert auth.read(cookie) is None  # signed under another key


@pytest.mark.parametrize("value, expected", [("", {}), ("sam=h1, kim=h2", {"sam": "h1", "kim": "h2"}), ("broken", {})])
def test_accounts_come_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv(auth.USERS_VARIABLE, value)
    assert auth.accounts() == expected
