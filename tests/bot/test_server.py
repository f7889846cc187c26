"""The parse API over real HTTP semantics (FastAPI's TestClient drives the ASGI app)."""

import pytest
import torch
from fastapi.testclient import TestClient

from bot.server import MAX_MESSAGE_CHARS, create_app
from tests.slm.test_joint import tiny_setup


@pytest.fixture(scope="module")
def client(request):
    from tests.conftest import FIXTURES

    torch.manual_seed(0)
    _, nlu, _ = tiny_setup(FIXTURES / "tiny.jsonl")
    with TestClient(create_app(nlu)) as client:
        yield client


def test_health(client):
    assert client.get("/health").json()["status"] == "ok"


def test_parse_returns_rasa_shaped_result(client):
    response = client.post("/model/parse", json={"text": "where is order A-1042"})
    assert response.status_code == 200
    body = response.json()
    assert body["text"] == "where is order A-1042"
    assert body["intent"]["name"] in {"order_status", "product_availability", "greet"}
    assert body["intent_ranking"][0] == body["intent"]
    assert isinstance(body["entities"], list)


@pytest.mark.parametrize(
    "payload",
    [{}, {"text": ""}, {"text": "   "}, {"text": 42}, {"text": "x" * (MAX_MESSAGE_CHARS + 1)}, ["text"]],
)
def test_bad_payloads_get_422_with_a_message(client, payload):
    response = client.post("/model/parse", json=payload)
    assert response.status_code == 422
    assert response.json()["detail"]


def test_invalid_utf8_is_a_client_error(client):
    response = client.post("/model/parse", content=b"\xff\xfe{", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["detail"]
