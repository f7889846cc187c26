"""Review API and annotations: the label queue, corrections that never touch the log, export and import."""

import json

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from bot.config import load_config
from bot.export import export_examples, import_examples
from bot.privacy import Redactor
from bot.retention import purge
from bot.runtime import BotRuntime
from bot.server import create_app
from bot.storage.tables import Event
from slm.datasets import load_examples
from slm.errors import DataError
from tests.conftest import ROOT

AUTH = {"Authorization": "Bearer t"}


@pytest.fixture
def runtime(example_model, tmp_path, monkeypatch):
    monkeypatch.setenv("SLMBOT_API_TOKEN", "t")
    return BotRuntime.load(load_config(ROOT / "config.toml"), model_dir=example_model, database_url=f"sqlite:///{tmp_path}/c.db",
                           data_dir=tmp_path, seed=0)


@pytest.fixture
def client(runtime):
    with TestClient(create_app(runtime)) as client:
        yield client


def say(client, sender: str, text: str) -> None:
    assert client.post("/webhooks/rest/webhook", json={"sender": sender, "message": text}).status_code == 200


def user_events(client, conversation: str) -> list[dict]:
    return [e for e in client.get(f"/conversations/{conversation}", headers=AUTH).json()["events"] if e["kind"] == "user"]


def test_the_queue_offers_the_least_certain_messages_first_and_each_text_once(client):
    for sender, text in [("a", "where is my order B-2001?"), ("b", "hmm the thing with the stuff"), ("c", "Hmm  the thing with the stuff"),
                         ("d", "/order_status"), ("e", "do you sell kettles")]:
        say(client, sender, text)
    queue = client.get("/annotations/queue?limit=10", headers=AUTH).json()
    texts = [item["text"].lower() for item in queue]
    assert "/order_status" not in texts and len(texts) == len(set(" ".join(t.split()) for t in texts)) == 3
    assert [item["uncertainty"] for item in queue] == sorted((item["uncertainty"] for item in queue), reverse=True)
    assert texts[-1] == "where is my order b-2001?"  # the model was sure of that one
    assert client.get("/annotations/queue").status_code in (401, 403)


def test_messages_an_earlier_model_version_read_differently_come_first(client, runtime):
    say(client, "x", "where is my order B-2001?")
    say(client, "y", "hmm the thing with the stuff")
    sure = user_events(client, "rest:x")[0]
    assert client.get("/annotations/queue", headers=AUTH).json()[0]["text"] != sure["text"]
    # The same message as an earlier model version logged it: another intent, full confidence.
    with Session(runtime.store.engine) as session:
        event = session.get(Event, sure["id"])
        event.intent, event.confidence, event.model_version = "greet", 1.0, "an-earlier-version"
        session.add(event)
        session.commit()
    queue = client.get("/annotations/queue", headers=AUTH).json()
    assert queue[0]["event_id"] == sure["id"] and queue[0]["live_intent"] == "order_status"
    assert all(item["live_intent"] is None for item in queue[1:])


def test_a_correction_with_a_new_intent_is_stored_redacted_and_the_log_stays(client):
    say(client, "ann", "can I pay by invoice? mail jane@example.com")
    event = user_events(client, "rest:ann")[0]
    created = client.post(f"/events/{event['id']}/annotations", headers=AUTH, json={
        "author": "sam", "intent": "payment_methods", "entities": [{"start": 27, "end": 43, "entity": "email"}]})
    assert created.status_code == 201, created.text
    annotation = created.json()
    assert annotation["text"] == "can I pay by invoice? mail <EMAIL>" and annotation["intent"] == "payment_methods"
    assert annotation["text"][annotation["entities"][0]["start"]:annotation["entities"][0]["end"]] == "<EMAIL>"
    assert user_events(client, "rest:ann")[0] == event  # the log is never overwritten
    assert [item["event_id"] for item in client.get("/annotations/queue", headers=AUTH).json()] == []  # labelled: off the queue
    assert [a["author"] for a in client.get(f"/events/{event['id']}/annotations", headers=AUTH).json()] == ["sam"]


def test_bot_replies_get_ratings_and_better_replies_and_bad_annotations_a_422(client):
    say(client, "bob", "my parcel is damaged")
    events = client.get("/conversations/rest:bob", headers=AUTH).json()["events"]
    user = next(e for e in events if e["kind"] == "user")
    bot = next(e for e in events if e["kind"] == "bot")
    rated = client.post(f"/events/{bot['id']}/annotations", headers=AUTH, json={
        "author": "sam", "rating": "bad", "reply": "Sorry to hear that! Send a photo to help@example.com and we replace it."})
    assert rated.status_code == 201 and rated.json()["rating"] == "bad" and "<EMAIL>" in rated.json()["reply"]
    for event_id, body, message in [
        (user["id"], {"author": "sam", "rating": "good"}, "apply to bot messages"),
        (bot["id"], {"author": "sam", "intent": "complaint"}, "apply to user messages"),
        (bot["id"], {"author": "sam"}, "rating"),
        (user["id"], {"author": "sam", "entities": [{"start": 5, "end": 500, "entity": "x"}]}, "not inside the text"),
        (user["id"], {"author": "sam", "intent": "not a name!"}, "intent must be"),
        (bot["id"], {"author": "sam", "rating": "meh"}, "good or bad"),
    ]:
        response = client.post(f"/events/{event_id}/annotations", headers=AUTH, json=body)
        assert response.status_code == 422 and message in response.json()["detail"], (body, response.text)
    assert client.post("/events/999999/annotations", headers=AUTH, json={"author": "sam", "rating": "good"}).status_code == 404


def test_export_import_round_trip_and_annotations_outlive_their_conversation(client, runtime, tmp_path):
    say(client, "cat", "do you deliver to Norway? call me on 07700 900123")
    event = user_events(client, "rest:cat")[0]
    client.post(f"/events/{event['id']}/annotations", headers=AUTH, json={"author": "sam", "intent": "shipping_countries", "entities": []})
    store, redactor = runtime.store, Redactor()
    out = tmp_path / "labelled.jsonl"
    with out.open("w") as file:
        assert export_examples(store, redactor, file) == 1
    record = json.loads(out.read_text())
    assert record == {"text": "do you deliver to Norway? call me on <PHONE>", "intent": "shipping_countries", "entities": [],
                      "event_id": event["id"], "annotated": True}
    assert load_examples(out)[0].intent == "shipping_countries"  # trainable as it stands

    extra = tmp_path / "more.jsonl"
    extra.write_text(json.dumps({"text": "ship to Oslo?", "intent": "shipping_countries", "entities": [{"start": 8, "end": 12, "entity": "city"}]}) + "\n")
    assert import_examples(extra, "vendor", redactor, store) == 1
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "ok", "intent": "greet"}\n{"text": "x", "intent": "greet", "entities": [{"start": 0, "end": 9, "entity": "y"}]}\n')
    with pytest.raises(DataError, match="broken.jsonl:2: entity span 0..9"):
        import_examples(broken, "vendor", redactor, store)
    assert len(store.annotations()) == 2  # all or none

    purge(store, days=-1, anonymize=False, redactor=redactor)  # retention deletes every conversation...
    assert store.conversation("rest:cat") is None
    with out.open("w") as file:
        assert export_examples(store, redactor, file) == 2  # ...the labelled examples stay
    assert {json.loads(line)["event_id"] for line in out.read_text().splitlines()} == {None}
