"""The reply generator inside the bot: trained from the bot's own data, gated, logged."""

import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from bot.config import load_config
from bot.domain import load_valid_domain
from bot.generator_data import agent_pairs, template_pairs
from bot.privacy import Redactor
from bot.registry import register
from bot.runtime import BotRuntime
from bot.server import create_app
from bot.storage.store import ConversationStore
from bot.storage.tables import Conversation, Event
from slm.generator import train_generator
from slm.settings import Seq2SeqConfig, TrainSettings
from tests.conftest import ROOT
from tests.model_versions import variant
from tests.servers import serving

SMALL = Seq2SeqConfig(vocab_size=600, emb_dim=32, hidden=64, dropout=0.0, max_source=96, max_target=48)


def test_template_pairs_follow_the_flows():
    pairs = template_pairs(load_valid_domain(ROOT))
    by_context = {p.context: p.response for p in pairs}
    assert "fact: intent greet\nuser: hello" in by_context
    assert by_context["fact: intent order_status\nuser: where is my order?"] in (
        "What's your order number? It looks like A-1042.",
        "Which order is it about? Please give me the order number (like A-1042).",
    )
    assert not any("order_id" in p.context and "order_status" in p.context for p in pairs)  # those wait for an action


def test_agent_replies_become_pairs(tmp_path):
    store = ConversationStore(f"sqlite:///{tmp_path}/c.db")
    store.migrate()
    store.save_turn(Conversation(id="rest:a", channel="rest", sender="a"), [
        Event(conversation_id="rest:a", kind="user", text="my parcel is damaged, call me on 07700 900123"),
        Event(conversation_id="rest:a", kind="bot", text="I'm passing you to a colleague.", source="template"),
        Event(conversation_id="rest:a", kind="bot", text="Sorry! I'll email a label to ann@example.com today.", source="agent"),
    ])
    pairs = agent_pairs(store, Redactor())
    # Personal data never reaches training data.
    assert [(p.context, p.response) for p in pairs] == [
        ("user: my parcel is damaged, call me on <PHONE>\nbot: I'm passing you to a colleague.", "Sorry! I'll email a label to <EMAIL> today.")
    ]


@pytest.fixture(scope="module")
def generator_dir(tmp_path_factory):
    pairs = template_pairs(load_valid_domain(ROOT))
    generator = train_generator(pairs[30:], pairs[:30], SMALL, TrainSettings(epochs=4, batch_size=32, lr=5e-3, seed=0, device="cpu"))
    models = tmp_path_factory.mktemp("models")
    generator.save(models / "generator")
    return models


def test_unhandled_message_gets_a_generated_or_gated_reply_and_both_are_logged(example_model, generator_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SLMBOT_API_TOKEN", "t")
    config = load_config(ROOT / "config.toml")
    config = replace(config, models_dir=generator_dir, generator=replace(config.generator, enabled=True, min_score=-1.5))
    runtime = BotRuntime.load(config, model_dir=example_model, database_url=f"sqlite:///{tmp_path}/c.db", data_dir=tmp_path, seed=0)
    assert runtime.store.models("generator")[0].active
    with TestClient(create_app(runtime)) as client:
        replies = client.post("/webhooks/rest/webhook", json={"sender": "ivy", "message": "/inform"}).json()
        events = client.get("/conversations/rest:ivy", headers={"Authorization": "Bearer t"}).json()["events"]
    generated = [e for e in events if e["source"] == "generator"]
    rejected = [e for e in events if e["kind"] == "generation_rejected"]
    assert len(generated) + len(rejected) == 1
    logged = (generated or rejected)[0]["data"]
    assert logged["gate"] in ("passed", "rejected") and logged["score"] <= 0
    if rejected:
        assert rejected[0]["data"]["reason"] and replies[0]["text"].startswith("Sorry, I can't help")
    else:
        assert replies[0]["text"] == generated[0]["text"]


def test_a_running_server_switches_to_a_promoted_generator_and_keeps_it_when_the_next_is_broken(
    example_model, generator_dir, tmp_path
):
    config = load_config(ROOT / "config.toml")
    config = replace(
        config, models_dir=generator_dir, generator=replace(config.generator, enabled=True, min_score=-1.5),
        server=replace(config.server, model_poll_seconds=0.2),
    )
    runtime = BotRuntime.load(config, model_dir=example_model, database_url=f"sqlite:///{tmp_path}/c.db", data_dir=tmp_path, seed=0)
    first = runtime.manager.generator.version
    registry = tmp_path / "registry"
    new = register(runtime.store, "generator", variant(generator_dir / "generator", tmp_path / "new", "new"), registry)
    broken = register(runtime.store, "generator", variant(generator_dir / "generator", tmp_path / "broken", "broken"), registry)
    Path(broken.path, "weights.pt").write_bytes(b"truncated")
    statuses = []
    with serving(create_app(runtime)) as url, httpx.Client(base_url=url, timeout=30) as client:

        def generated_turn() -> None:  # "/inform" has no flow: the generator answers
            sender = f"s{len(statuses)}"
            statuses.append(client.post("/webhooks/rest/webhook", json={"sender": sender, "message": "/inform"}).status_code)

        assert client.get("/health").json()["generator"] == first
        runtime.store.promote("generator", new.version)
        deadline = time.monotonic() + 20
        while client.get("/health").json()["generator"] != new.version:
            assert time.monotonic() < deadline, "the server never switched generators"
            generated_turn()
        runtime.store.promote("generator", broken.version)  # cannot load: the server keeps the one it has
        time.sleep(1.0)
        generated_turn()
        assert client.get("/health").json()["generator"] == new.version
    assert statuses and all(status == 200 for status in statuses)
