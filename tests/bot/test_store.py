"""The conversation store on SQLite and on the local PostgreSQL: migrations, turns, handoff queue, models."""

import dataclasses

import pytest

from bot.storage.store import ConversationStore, StorageUnavailable, TurnWrite
from bot.storage.tables import Conversation, Event, PendingEvent


@pytest.fixture
def store(database_url):
    store = ConversationStore(database_url)
    store.migrate()
    store.migrate()  # idempotent
    yield store
    store.close()


def test_a_turn_is_saved_with_its_events_in_order(store):
    conversation = Conversation(id="rest:ann", channel="rest", sender="ann", state={"stack": []})
    store.save_turn(conversation, [
        Event(conversation_id="rest:ann", kind="user", text="hi", intent="greet", confidence=0.9, entities=[], model_version="abc"),
        Event(conversation_id="rest:ann", kind="bot", text="Hello!", source="template", response="utter_greet"),
    ])
    created = store.conversation("rest:ann").created_at
    conversation.state, conversation.session, conversation.handed_off = {"stack": [{"flow": "x"}]}, 2, True
    bye = PendingEvent("rest:ann", "user", text="bye")  # what the dialogue manager writes
    store.save_turn(conversation, [bye])
    loaded = store.conversation("rest:ann")
    assert (loaded.state, loaded.session, loaded.handed_off, loaded.created_at) == ({"stack": [{"flow": "x"}]}, 2, True, created)
    assert [e.text for e in store.events("rest:ann")] == ["hi", "Hello!", "bye"]
    assert bye.id == store.events("rest:ann")[-1].id  # a stored event knows its id, as the ORM would set it
    assert store.events("rest:ann", kinds=("bot",))[0].response == "utter_greet"
    assert store.conversation("rest:nobody") is None


def test_a_pending_event_has_the_columns_and_defaults_of_a_stored_one():
    pending = PendingEvent("rest:ann", "user")
    stored = Event(conversation_id="rest:ann", kind="user")
    columns = [column.name for column in Event.__table__.columns]
    assert sorted(f.name for f in dataclasses.fields(PendingEvent)) == sorted(columns)
    assert {name: getattr(pending, name) for name in columns if name != "created_at"} == {
        name: getattr(stored, name) for name in columns if name != "created_at"
    }
    assert abs(pending.created_at - stored.created_at).total_seconds() < 60


def test_turns_of_several_conversations_share_a_commit_and_a_refused_one_fails_alone(store):
    def turn(sender: str, text: str, conversation_id: str | None = None) -> TurnWrite:
        conversation = Conversation(id=f"rest:{sender}", channel="rest", sender=sender)
        return TurnWrite(conversation, [Event(conversation_id=conversation_id or conversation.id, kind="user", text=text)])

    assert store.save_turns([turn("a", "one"), turn("b", "two")]) == [None, None]
    # An event pointing at a conversation that does not exist breaks the foreign key.
    outcomes = store.save_turns([turn("c", "three"), turn("d", "four", conversation_id="rest:ghost"), turn("e", "five")])
    assert outcomes[0] is None and isinstance(outcomes[1], StorageUnavailable) and outcomes[2] is None
    assert [e.text for e in store.events("rest:c")] == ["three"] and [e.text for e in store.events("rest:e")] == ["five"]
    assert store.events("rest:ghost") == [] and store.events("rest:d") == []


def test_undelivered_messages_and_handoff_queue(store):
    conversation = Conversation(id="rest:bob", channel="rest", sender="bob", handed_off=True)
    store.save_turn(conversation, [Event(conversation_id="rest:bob", kind="bot", text="agent says hi", source="agent", delivered=False)])
    stored, pending = store.conversation_and_undelivered("rest:bob")
    assert stored.handed_off and [e.text for e in pending] == ["agent says hi"]
    store.mark_delivered([pending[0].id])
    assert store.conversation_and_undelivered("rest:bob")[1] == []
    assert store.conversation_and_undelivered("rest:nobody") == (None, [])
    assert [c.id for c in store.handed_off()] == ["rest:bob"]


def test_concurrent_turns_read_their_conversations_in_one_call(store):
    for sender, pending in (("ann", ["one", "two"]), ("cy", [])):
        conversation = Conversation(id=f"rest:{sender}", channel="rest", sender=sender)
        store.save_turn(conversation, [Event(conversation_id=conversation.id, kind="bot", text=t, delivered=False) for t in pending])
    read = store.conversations_and_undelivered(["rest:cy", "rest:nobody", "rest:ann"])
    assert [(c.id if c else None, [e.text for e in events]) for c, events in read] == [
        ("rest:cy", []), (None, []), ("rest:ann", ["one", "two"])
    ]


def test_recording_a_model_makes_it_the_active_one(store):
    store.record_model("nlu", "v1", "/m/1", {"dev": {"intent_accuracy": 0.9}})
    store.record_model("nlu", "v2", "/m/2", {})
    models = store.models("nlu")
    assert [(m.version, m.active) for m in models] == [("v2", True), ("v1", False)]
    assert models[1].metrics["dev"]["intent_accuracy"] == 0.9


def test_a_database_that_is_down_raises_storage_unavailable():
    store = ConversationStore("postgresql+psycopg://postgres@127.0.0.1:9/test")
    with pytest.raises(StorageUnavailable, match="database error: OperationalError"):
        store.conversation("rest:x")
