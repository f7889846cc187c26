"""The web chat channel over a real model and SQLite: WebSocket turns, fan-out, agent push, history, origins."""

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from bot.config import load_config
from bot.runtime import BotRuntime
from bot.server import create_app
from tests.conftest import ROOT

TOKEN = "test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SESSION = "session-0001"


@pytest.fixture
def client(example_model, tmp_path, monkeypatch):
    monkeypatch.setenv("SLMBOT_API_TOKEN", TOKEN)
    runtime = BotRuntime.load(
        load_config(ROOT / "config.toml"), model_dir=example_model, database_url=f"sqlite:///{tmp_path}/c.db", data_dir=tmp_path, seed=0
    )
    with TestClient(create_app(runtime)) as client:
        yield client


def turn(socket, text: str) -> list[dict]:
    """Send ``text``; everything up to ``done`` (typing first)."""
    socket.send_json({"text": text})
    received = []
    while not received or received[-1]["type"] != "done":
        received.append(socket.receive_json())
    assert received[0]["type"] == "typing"
    return [m for m in received[1:-1]]


def test_order_status_over_the_socket_with_buttons(client):
    with client.websocket_connect(f"/ws/chat?session={SESSION}") as socket:
        greeting = turn(socket, "hi")
        assert greeting[0]["type"] == "bot" and greeting[0]["at"]
        assert {"title": "Track an order", "payload": "/order_status"} in greeting[0]["buttons"]
        assert "order number" in turn(socket, "/order_status")[0]["text"]
        assert "B-2001 (blender, coffee grinder) has shipped" in turn(socket, "B-2001")[0]["text"]


def test_a_second_tab_sees_the_conversation_and_history_shows_button_titles(client):
    with client.websocket_connect(f"/ws/chat?session={SESSION}") as first, client.websocket_connect(f"/ws/chat?session={SESSION}") as second:
        replies = turn(first, "hi")
        echoed = second.receive_json()
        assert (echoed["type"], echoed["text"]) == ("user", "hi")
        assert second.receive_json()["text"] == replies[0]["text"]
        turn(first, "/order_status")
    history = client.get(f"/web/history?session={SESSION}").json()
    assert [(m["type"], m["text"]) for m in history][:3] == [("user", "hi"), ("bot", replies[0]["text"]), ("user", "Track an order")]
    assert history[1]["buttons"] and "order number" in history[3]["text"]


def test_agent_messages_are_pushed_to_the_open_widget(client):
    with client.websocket_connect(f"/ws/chat?session={SESSION}") as socket:
        assert "colleague" in turn(socket, "I want to talk to a human")[0]["text"]
        sent = client.post(f"/conversations/web:{SESSION}/agent", json={"text": "Hi, Sam here.", "agent": "sam"}, headers=AUTH)
        assert sent.status_code == 200
        pushed = socket.receive_json()
        assert pushed["type"] == "bot" and pushed["text"] == "Hi, Sam here." and pushed["source"] == "agent"
        # Delivered by push, so it is not repeated with the customer's next message.
        assert turn(socket, "thanks Sam") == []


def test_rest_fallback_answers_like_the_socket(client):
    response = client.post("/web/message", json={"session": SESSION, "text": "where is my order B-2001?"})
    assert response.status_code == 200
    assert "has shipped" in response.json()[0]["text"]
    assert client.post("/web/message", json={"session": "bad id!", "text": "hi"}).status_code == 422
    assert client.post("/web/message", json={"session": SESSION, "text": "   "}).status_code == 422


def test_foreign_origins_are_refused(client):
    evil = {"Origin": "http://evil.example"}
    assert client.post("/web/message", json={"session": SESSION, "text": "hi"}, headers=evil).status_code == 403
    assert client.get(f"/web/history?session={SESSION}", headers=evil).status_code == 403
    with pytest.raises(WebSocketDisconnect) as refused:
        with client.websocket_connect(f"/ws/chat?session={SESSION}", headers=evil) as socket:
            socket.receive_json()
    assert refused.value.code == 1008
    allowed = {"Origin": "http://localhost:8000"}
    assert client.post("/web/message", json={"session": SESSION, "text": "hi"}, headers=allowed).status_code == 200


def test_a_malformed_frame_gets_an_error_and_the_socket_stays_usable(client):
    with client.websocket_connect(f"/ws/chat?session={SESSION}") as socket:
        socket.send_json({"message": "hi"})
        error = socket.receive_json()
        assert error["type"] == "error" and "text" in error["message"]
        assert turn(socket, "hi")[0]["type"] == "bot"


def test_widget_files_and_demo_page_are_served(client):
    script = client.get("/widget.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert len(script.content) < 30_000
    assert "innerHTML" not in script.text  # messages are rendered as text only
    assert client.get("/widget.css").status_code == 200
    assert '<script src="/widget.js"' in client.get("/").text
