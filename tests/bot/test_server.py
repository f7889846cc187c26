"""The HTTP server end to end: real model, real database (SQLite and PostgreSQL), Rasa's REST payloads."""

import inspect

import pytest
from fastapi.testclient import TestClient

from bot.api.schemas import MAX_MESSAGE_CHARS
from bot.config import load_config
from bot.runtime import BotRuntime
from bot.server import create_app
from bot.storage.store import make_engine
from tests.conftest import ROOT

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def runtime(example_model, database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("SLMBOT_API_TOKEN", TOKEN)
    return BotRuntime.load(load_config(ROOT / "config.toml"), model_dir=example_model, database_url=database_url, data_dir=tmp_path, seed=0)


@pytest.fixture
def client(runtime):
    with TestClient(create_app(runtime)) as client:
        yield client


def say(client, sender: str, text: str) -> list[dict]:
    response = client.post("/webhooks/rest/webhook", json={"sender": sender, "message": text})
    assert response.status_code == 200, response.text
    return response.json()


def texts(replies: list[dict]) -> list[str]:
    return [r["text"] for r in replies]


def test_scripted_order_status_and_return_with_digression_and_correction(client):
    greeting = say(client, "alice", "hi")
    assert greeting[0]["recipient_id"] == "alice"
    assert {"title": "Track an order", "payload": "/order_status"} in greeting[0]["buttons"]

    assert "order number" in texts(say(client, "alice", "where is my order?"))[0]
    digression = texts(say(client, "alice", "what are your opening hours?"))
    assert "Monday to Friday" in digression[0] and "order number" in digression[1]
    shipped = say(client, "alice", "B-2001")
    assert "order B-2001 (blender, coffee grinder) has shipped" in shipped[0]["text"]
    assert "buttons" not in shipped[0]  # Rasa leaves out what a message does not have

    assert "order number" in texts(say(client, "alice", "I want to return something"))[0]
    assert "(desk lamp)" in texts(say(client, "alice", "D-4821"))[0]
    corrected = texts(say(client, "alice", "sorry, I meant C-3310"))
    assert corrected == ["Which item from order C-3310 would you like to return (yoga mat, water bottle)?"]
    assert texts(say(client, "alice", "the yoga mat")) == ["Which email address should we send the return label to?"]
    done = texts(say(client, "alice", "jane@example.com"))[0]
    assert "yoga mat from order C-3310" in done and "jane@example.com" in done

    transcript = client.get("/conversations/rest:alice", headers=AUTH).json()
    users = [e for e in transcript["events"] if e["kind"] == "user"]
    assert [e["text"] for e in users][:3] == ["hi", "where is my order?", "what are your opening hours?"]
    assert len(users) == 9
    assert all(e["intent"] and 0 < e["confidence"] <= 1 and e["model_version"] for e in users)
    assert users[3]["entities"][0]["entity"] == "order_id" and users[3]["entities"][0]["value"] == "B-2001"
    bots = [e for e in transcript["events"] if e["kind"] == "bot"]
    assert all(e["source"] == "template" and e["response"].startswith("utter_") for e in bots)
    actions = [e["data"]["action"] for e in transcript["events"] if e["kind"] == "action"]
    assert "lookup_order" in actions and "create_return" in actions


def test_handoff_agent_reply_and_handback(client):
    assert "colleague" in texts(say(client, "bob", "I want to talk to a human"))[0]
    assert [c["id"] for c in client.get("/handoffs", headers=AUTH).json()] == ["rest:bob"]
    assert say(client, "bob", "hello? anyone?") == []

    sent = client.post("/conversations/rest:bob/agent", json={"text": "Hi, Sam here. How can I help?", "agent": "sam"}, headers=AUTH)
    assert sent.status_code == 200 and sent.json()["source"] == "agent"
    assert texts(say(client, "bob", "my parcel is damaged")) == ["Hi, Sam here. How can I help?"]
    assert client.post("/conversations/rest:bob/handback", json={"agent": "sam"}, headers=AUTH).status_code == 200
    assert client.get("/handoffs", headers=AUTH).json() == []
    back = texts(say(client, "bob", "where is order B-2001"))
    assert "back with the shop assistant" in back[0] and "has shipped" in back[1]

    events = client.get("/conversations/rest:bob", headers=AUTH).json()["events"]
    agent = [e for e in events if e["source"] == "agent"]
    assert agent[0]["data"] == {"agent": "sam"}
    assert [e["kind"] for e in events].count("handoff") == 1 and [e["kind"] for e in events].count("handback") == 1
    silent = [e for e in events if e["text"] == "hello? anyone?"]
    assert silent and silent[0]["intent"]  # stored with its parse even though the bot stayed silent


def test_agent_endpoints_need_the_token_and_a_handed_off_conversation(client, monkeypatch):
    say(client, "carol", "hi")
    assert client.get("/conversations/rest:carol").status_code == 401
    assert client.get("/conversations/rest:carol", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/conversations/rest:nobody", headers=AUTH).status_code == 404
    busy = client.post("/conversations/rest:carol/agent", json={"text": "hi", "agent": "sam"}, headers=AUTH)
    assert busy.status_code == 409 and "not handed off" in busy.json()["detail"]
    assert client.post("/conversations/rest:nobody/agent", json={"text": "hi", "agent": "sam"}, headers=AUTH).status_code == 404
    monkeypatch.delenv("SLMBOT_API_TOKEN")
    disabled = client.get("/conversations/rest:carol", headers=AUTH)
    assert disabled.status_code == 403 and "SLMBOT_API_TOKEN" in disabled.json()["detail"]


@pytest.mark.parametrize(
    "payload",
    [
        {"sender": "dave", "message": ""},
        {"sender": "dave", "message": "   \n "},
        {"sender": "dave", "message": "x" * (MAX_MESSAGE_CHARS * 10)},
        {"sender": "dave", "message": 42},
        {"sender": "dave"},
        {"sender": "", "message": "hi"},
        {"sender": "da\x00ve", "message": "hi"},
        {"sender": "d" * 256, "message": "hi"},
        {"sender": ["dave"], "message": "hi"},
        ["dave", "hi"],
    ],
)
def test_bad_payloads_get_422_with_a_message_and_store_nothing(client, payload):
    response = client.post("/webhooks/rest/webhook", json=payload)
    assert response.status_code == 422
    assert response.json()["detail"]
    assert client.get("/conversations/rest:dave", headers=AUTH).status_code == 404


def test_invalid_utf8_and_non_json_are_client_errors(client):
    for body in (b'{"sender": "eve", "message": "\xff\xfe"}', b"not json"):
        response = client.post("/webhooks/rest/webhook", content=body, headers={"content-type": "application/json"})
        assert 400 <= response.status_code < 500 and response.json()["detail"]


def test_database_down_gives_503_and_the_message_is_not_taken(client, runtime):
    say(client, "frank", "hi")
    working = runtime.store.engine
    runtime.store.engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:9/test")
    response = client.post("/webhooks/rest/webhook", json={"sender": "frank", "message": "where is order B-2001"})
    assert response.status_code == 503
    assert "not accepted" in response.json()["detail"]
    health = client.get("/health")
    assert health.status_code == 503 and health.json()["database"] == "unavailable"
    runtime.store.engine = working
    events = client.get("/conversations/rest:frank", headers=AUTH).json()["events"]
    assert "where is order B-2001" not in [e["text"] for e in events]


def test_parse_health_and_docs(client):
    parsed = client.post("/model/parse", json={"text": "where is order A-1042"}).json()
    assert parsed["intent"]["name"] == "order_status"
    assert parsed["entities"][0]["value"] == "A-1042" and parsed["entities"][0]["extractor"] == "lexicon"
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["database"] == "ok" and health["model"] == parsed["model"]
    assert health["redis"] == "not configured" and health["parsing"] == "worker"  # no child outside `slmbot run`
    assert client.get("/openapi.json").json()["paths"]["/webhooks/rest/webhook"]
    assert client.post("/model/parse", json={"text": ""}).status_code == 422
    assert say(client, "gina", "a" * MAX_MESSAGE_CHARS)  # one huge word still gets an answer


def test_a_stored_flow_the_project_no_longer_has_is_dropped(client, runtime):
    say(client, "hank", "where is my order?")
    conversation = runtime.store.conversation("rest:hank")
    conversation.state["stack"][0]["flow"] = "renamed_flow"
    runtime.store.save_turn(conversation, [])
    assert say(client, "hank", "hi")[0]["text"].startswith(("Hi", "Hello"))


def metric(client, name: str) -> float:
    """The value of one sample in /metrics (0 when absent)."""
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def test_metrics_count_messages_fallbacks_and_handoffs(client):
    before = {name: metric(client, name) for name in (
        'slmbot_messages_total{channel="rest"}', 'slmbot_fallbacks_total{channel="rest"}',
        'slmbot_handoffs_total{channel="rest"}', 'slmbot_turn_seconds_count{channel="rest"}',
    )}
    say(client, "ivan", "where is my order B-2001?")
    say(client, "ivan", "/no_such_intent")  # understood as nothing the bot handles: the default answer
    say(client, "ivan", "I want to talk to a human")
    after = {name: metric(client, name) for name in before}
    deltas = {name.split("{")[0]: after[name] - before[name] for name in before}
    assert deltas == {"slmbot_messages_total": 3, "slmbot_fallbacks_total": 1, "slmbot_handoffs_total": 1, "slmbot_turn_seconds_count": 3}
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")


def test_no_route_dependency_hops_to_a_thread():
    """FastAPI runs a plain-function dependency in its thread pool: each request would pay a hop."""
    from fastapi.routing import APIRoute

    from bot.admin import routes as admin
    from bot.api import annotations, conversations, model
    from bot.channels import rest, telegram, web

    def calls(dependant):
        for dependency in dependant.dependencies:
            yield dependency.call
            yield from calls(dependency)

    routes = [r for m in (admin, annotations, conversations, model, rest, telegram, web) for r in m.router.routes if isinstance(r, APIRoute)]
    plain = {
        f"{route.path}: {getattr(call, '__name__', type(call).__name__)}"
        for route in routes
        for call in calls(route.dependant)
        if not (inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(getattr(call, "__call__", None)))
    }
    assert not plain
    assert "/webhooks/rest/webhook" in {route.path for route in routes}
