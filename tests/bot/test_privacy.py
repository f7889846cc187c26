"""Personal data: detection, placeholders with aligned entity spans, write-time redaction, retention, export."""

import dataclasses
import json
from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient

from bot.config import ConfigError, PrivacySettings, load_config
from bot.export import export_examples
from bot.privacy import Redactor, iban_valid, luhn_valid
from bot.retention import purge
from bot.runtime import BotRuntime
from bot.server import create_app
from bot.storage.store import ConversationStore
from bot.storage.tables import Conversation, Event
from slm.datasets import load_examples
from tests.conftest import ROOT

REDACTOR = Redactor()
FAR_FUTURE = datetime(2999, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("text, expected", [
    ("mail jane.doe+shop@mail.example.co.uk now", "mail <EMAIL> now"),
    ("call +44 20 7946 0958 or 0049 (0)30 1234567", "call <PHONE> or <PHONE>"),
    ("my number: (555) 123-4567, or 555.123.4567", "my number: <PHONE>, or <PHONE>"),
    ("ring 07700 900123 / 030 1234567", "ring <PHONE> / <PHONE>"),
    ("pay with 4111 1111 1111 1111 or 5500-0000-0000-0004", "pay with <CARD> or <CARD>"),
    ("IBAN DE89 3704 0044 0532 0130 00, or gb82west12345698765432.", "IBAN <IBAN>, or <IBAN>."),
])
def test_personal_data_is_replaced_by_typed_placeholders(text, expected):
    assert REDACTOR.redact(text).text == expected


@pytest.mark.parametrize("text", [
    "where is order A-1042?",
    "delivered on 2026-11-30 or 30.11.2026 at 14:30",
    "it cost 39.90 EUR, refund 1,299.00",
    "card 4111 1111 1111 1112 does not pass Luhn",
    "DE89 3704 0044 0532 0130 01 fails mod 97",
    "room 12, flat 4, 221B Baker Street",
    "ref 12345",
])
def test_ordinary_numbers_are_left_alone(text):
    assert REDACTOR.redact(text).text == text


def test_checksums():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and not iban_valid("GB82 WEST 1234 5698 7654 33")


def test_entity_spans_follow_the_placeholders():
    text = "send it to jane@example.com, order B-2001 please"
    email, order = (11, 27), (35, 41)
    redacted = REDACTOR.redact(text, [email, order])
    assert redacted.text == "send it to <EMAIL>, order B-2001 please"
    (email_start, email_end), (order_start, order_end) = redacted.spans
    assert redacted.text[email_start:email_end] == "<EMAIL>"
    assert redacted.text[order_start:order_end] == "B-2001"


def test_project_patterns_and_their_validation():
    redactor = Redactor({"customer_no": r"\bKD-\d{6}\b"})
    assert redactor.redact("I am customer KD-123456").text == "I am customer <CUSTOMER_NO>"
    with pytest.raises(ConfigError, match="customer_no"):
        PrivacySettings(patterns={"customer_no": "KD-(\\d"})


def make_runtime(example_model, tmp_path, database_url, **privacy):
    config = load_config(ROOT / "config.toml")
    config = dataclasses.replace(config, privacy=dataclasses.replace(config.privacy, **privacy))
    return BotRuntime.load(config, model_dir=example_model, database_url=database_url, data_dir=tmp_path, seed=0)


def test_redaction_at_write_stores_no_personal_data(example_model, tmp_path, monkeypatch):
    monkeypatch.setenv("SLMBOT_API_TOKEN", "t")
    runtime = make_runtime(example_model, tmp_path, f"sqlite:///{tmp_path}/c.db", redact_at_write=True)
    with TestClient(create_app(runtime)) as client:
        for text in ["I want to return the yoga mat from C-3310", "jane@example.com"]:
            replies = client.post("/webhooks/rest/webhook", json={"sender": "ann", "message": text}).json()
        assert "jane@example.com" in replies[0]["text"]  # the customer sees their address...
        stored = json.dumps(client.get("/conversations/rest:ann", headers={"Authorization": "Bearer t"}).json())
    assert "jane@example.com" not in stored and "<EMAIL>" in stored  # ...the log does not keep it


def test_purge_deletes_or_anonymizes_idle_conversations(database_url):
    store = ConversationStore(database_url)
    store.migrate()
    for sender in ("old", "older", "fresh"):
        store.save_turn(Conversation(id=f"rest:{sender}", channel="rest", sender=sender, state={"slots": {"email": "x@y.org"}}), [
            Event(conversation_id=f"rest:{sender}", kind="user", text="mail x@y.org", entities=[
                {"entity": "email", "value": "x@y.org", "start": 5, "end": 12, "text": "x@y.org"}]),
            Event(conversation_id=f"rest:{sender}", kind="action", data={"action": "create_return", "result": {"email": "x@y.org"}}),
        ])
    store.shift_activity("rest:old", 60 * 24 * 40)
    store.shift_activity("rest:older", 60 * 24 * 50)

    assert purge(store, days=30, anonymize=True, redactor=REDACTOR) == 2
    assert store.conversation("rest:old") is None and store.conversation("rest:fresh") is not None
    anonymized = store.idle_since(FAR_FUTURE)
    kept = [c for c in anonymized if c.startswith("anonymized:")]
    assert len(kept) == 2
    events = store.events(kept[0])
    assert events[0].text == "mail <EMAIL>" and events[0].entities[0]["text"] == "<EMAIL>"
    assert events[1].data == {} and store.conversation(kept[0]).state == {} and store.conversation(kept[0]).sender == "anonymized"

    store.shift_activity("rest:fresh", 60 * 24 * 40)
    assert purge(store, days=30, anonymize=False, redactor=REDACTOR) == 3
    assert store.idle_since(FAR_FUTURE) == [] and store.events("rest:fresh") == []
    store.close()


def test_export_writes_redacted_training_examples(tmp_path):
    store = ConversationStore(f"sqlite:///{tmp_path}/c.db")
    store.migrate()
    store.save_turn(Conversation(id="rest:a", channel="rest", sender="a"), [
        Event(conversation_id="rest:a", kind="user", text="return C-3310, label to a@b.com", intent="return_item", confidence=0.9,
              entities=[{"entity": "order_id", "value": "C-3310", "start": 7, "end": 13, "text": "C-3310"},
                        {"entity": "email", "value": "a@b.com", "start": 24, "end": 31, "text": "a@b.com"}]),
        Event(conversation_id="rest:a", kind="user", text="/affirm", intent="affirm", confidence=1.0),
        Event(conversation_id="rest:a", kind="bot", text="Done, a@b.com"),
    ])
    out = tmp_path / "export.jsonl"
    with out.open("w") as file:
        assert export_examples(store, REDACTOR, file, everything=True) == 1
    record = json.loads(out.read_text())
    assert record["text"] == "return C-3310, label to <EMAIL>" and record["intent"] == "return_item" and not record["annotated"]
    assert [record["text"][e["start"]:e["end"]] for e in record["entities"]] == ["C-3310", "<EMAIL>"]
    # The file is NLU training data as it stands.
    example = load_examples(out)[0]
    assert example.intent == "return_item" and len(example.spans) == 2
    assert store.events("rest:a")[0].text == "return C-3310, label to a@b.com"  # the log itself is untouched
