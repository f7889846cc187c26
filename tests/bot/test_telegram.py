"""Telegram end to end: python-telegram-bot's own HTTP client talks to a fake Bot API server."""

import dataclasses

import pytest
from fastapi.testclient import TestClient

from bot.channels.telegram import SECRET_HEADER, split_text
from bot.config import ConfigError, load_config
from bot.runtime import BotRuntime
from bot.server import create_app
from tests.conftest import ROOT
from tests.servers import serving
from tests.telegram_fake import CHAT, FakeBotApi

SECRET = "s3cret-token"
TOKEN = "123:ABC"


@pytest.fixture
def fake():
    api = FakeBotApi()
    with serving(api.app) as api.url:
        yield api


@pytest.fixture
def runtime(example_model, tmp_path, fake, monkeypatch):
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("SLMBOT_API_TOKEN", "agent-token")
    config = load_config(ROOT / "config.toml")
    runtime = BotRuntime.load(config, model_dir=example_model, database_url=f"sqlite:///{tmp_path}/c.db", data_dir=tmp_path, seed=0)
    runtime.config = dataclasses.replace(config, telegram=dataclasses.replace(config.telegram, enabled=True, base_url=fake.url))
    return runtime


def post_update(client: TestClient, update: dict, secret: str = SECRET):
    return client.post("/webhooks/telegram", json=update, headers={SECRET_HEADER: secret})


def test_order_status_conversation_over_the_webhook(runtime, fake):
    with TestClient(create_app(runtime)) as client:
        assert post_update(client, fake.message_update("/start")).status_code == 200
        greeting = fake.called("sendMessage")[-1]
        assert int(greeting["chat_id"]) == CHAT["id"]
        titles = [row[0]["text"] for row in greeting["reply_markup"]["inline_keyboard"]]
        assert titles == ["Track an order", "Return an item", "Talk to a person"]
        assert greeting["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "/order_status"

        press = fake.button_update("/order_status")
        assert post_update(client, press).status_code == 200
        assert fake.called("answerCallbackQuery")[-1]["callback_query_id"] == press["callback_query"]["id"]
        assert "order number" in fake.sent_texts()[-1]

        assert post_update(client, fake.message_update("B-2001")).status_code == 200
        assert "B-2001 (blender, coffee grinder) has shipped" in fake.sent_texts()[-1]
        transcript = client.get(f"/conversations/telegram:{CHAT['id']}", headers={"Authorization": "Bearer agent-token"}).json()
        assert [e["text"] for e in transcript["events"] if e["kind"] == "user"] == ["/greet", "/order_status", "B-2001"]


def test_order_status_conversation_by_long_polling(runtime, fake):
    with TestClient(create_app(runtime, telegram_polling=True)):
        fake.queue(fake.message_update("where is my order?"))
        fake.wait_for(lambda: len(fake.sent_texts()) == 1)
        assert "order number" in fake.sent_texts()[0]
        fake.queue(fake.message_update("B-2001"))
        fake.wait_for(lambda: len(fake.sent_texts()) == 2)
        assert "has shipped" in fake.sent_texts()[1]
        # getUpdates was asked for updates after the ones already handled.
        fake.wait_for(lambda: any(int(p.get("offset", 0)) > 2 for p in fake.called("getUpdates")))
    assert fake.called("deleteWebhook")


def test_wrong_secret_is_refused_and_repeats_run_once(runtime, fake):
    with TestClient(create_app(runtime)) as client:
        update = fake.message_update("where is my order B-2001?")
        assert post_update(client, update, secret="wrong").status_code == 403
        assert client.post("/webhooks/telegram", json=update).status_code == 403
        assert fake.called("sendMessage") == []
        assert post_update(client, update).status_code == 200
        assert post_update(client, update).status_code == 200  # Telegram retried it
        assert len(fake.sent_texts()) == 1
        assert client.post("/webhooks/telegram", content=b"not json", headers={SECRET_HEADER: SECRET}).status_code == 400


def test_non_text_updates_never_crash(runtime, fake):
    sticker = {"file_id": "f", "file_unique_id": "u", "type": "regular", "width": 512, "height": 512, "is_animated": False, "is_video": False}
    with TestClient(create_app(runtime)) as client:
        assert post_update(client, fake.message_update(sticker=sticker)).status_code == 200
        assert fake.sent_texts() == ["Sorry, I can only read text messages. Please type your question."]
        edited = fake.message_update("where is my order?")
        edited["edited_message"] = {**edited.pop("message"), "edit_date": 1}
        assert post_update(client, edited).status_code == 200
        member = {"chat": CHAT, "from": {"id": 1, "is_bot": False, "first_name": "X"}, "date": 1,
                  "old_chat_member": {"status": "member", "user": {"id": 777, "is_bot": True, "first_name": "Shop"}},
                  "new_chat_member": {"status": "kicked", "until_date": 0, "user": {"id": 777, "is_bot": True, "first_name": "Shop"}}}
        assert post_update(client, {"update_id": 9000, "my_chat_member": member}).status_code == 200
        assert len(fake.sent_texts()) == 1
        # ...and the bot still works afterwards.
        assert post_update(client, fake.message_update("where is my order B-2001?")).status_code == 200
        assert "has shipped" in fake.sent_texts()[-1]


def test_flood_control_is_retried_and_long_agent_messages_are_split(runtime, fake):
    with TestClient(create_app(runtime)) as client:
        fake.flood = 1
        assert post_update(client, fake.message_update("I want to talk to a human")).status_code == 200
        assert "colleague" in fake.sent_texts()[-1]
        assert [p["_flooded"] for p in fake.called("sendMessage") if "_flooded" in p] == [True]
        long_text = ("Here is everything about your order. " * 250).strip()
        sent = client.post(
            f"/conversations/telegram:{CHAT['id']}/agent", json={"text": long_text, "agent": "sam"}, headers={"Authorization": "Bearer agent-token"}
        )
        assert sent.status_code == 200
        parts = fake.sent_texts()[-3:]
        assert all(len(p) <= 4096 for p in parts) and " ".join(parts) == long_text


def test_split_text_keeps_words_and_everything():
    text = "word " * 2000
    parts = split_text(text.strip(), 100)
    assert all(0 < len(p) <= 100 for p in parts) and " ".join(parts) == text.strip()
    assert split_text("x" * 250, 100) == ["x" * 100, "x" * 100, "x" * 50]
    assert split_text("") == [""]


def test_webhook_mode_needs_its_secret(runtime, monkeypatch):
    monkeypatch.delenv("TELEGRAM_WEBHOOK_SECRET")
    with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_SECRET"):
        create_app(runtime)
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN")
    with pytest.raises(ConfigError, match="TELEGRAM_BOT_TOKEN"):
        create_app(runtime, telegram_polling=True)
