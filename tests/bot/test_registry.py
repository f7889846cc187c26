"""Model registry (register, promote, rollback) and hot reload of a running server under load."""

import dataclasses
import shutil
import threading
import time
from pathlib import Path

import httpx
import pytest

from bot.config import load_config
from bot.registry import RegistryError, promote, register, rollback
from bot.parse_process import ParseProcess
from bot.runtime import BotRuntime
from bot.server import create_app
from bot.storage.store import ConversationStore
from bot.trained_models import model_version
from tests.conftest import ROOT
from tests.model_versions import variant
from tests.servers import serving


def test_register_promote_and_roll_back(example_model, tmp_path, database_url):
    store = ConversationStore(database_url)
    store.migrate()
    models_dir, live = tmp_path / "models", tmp_path / "models" / "nlu"
    first = register(store, "nlu", variant(example_model, tmp_path / "a", "first"), models_dir)
    second = register(store, "nlu", variant(example_model, tmp_path / "b", "second"), models_dir)
    assert second.parent == first.version and first.parent is None
    assert first.data_hash and first.data_hash == second.data_hash and first.metrics["dev"]["intent_accuracy"] > 0
    assert Path(second.path) == models_dir / "registry" / "nlu" / second.version and Path(second.path, "weights.pt").is_file()
    assert store.active_model("nlu").version == second.version

    assert rollback(store, "nlu", live).version == first.version
    assert model_version(live) == first.version and store.active_model("nlu").version == first.version
    assert promote(store, "nlu", second.version, live).version == second.version
    assert model_version(live) == second.version
    assert [m.active for m in store.models("nlu")] == [True, False]

    with pytest.raises(RegistryError, match="no nlu model version nope"):
        promote(store, "nlu", "nope", live)
    shutil.rmtree(first.path)
    with pytest.raises(RegistryError, match="gone"):
        promote(store, "nlu", first.version, live)
    store.close()


@pytest.mark.parametrize("parse_in_child", [False, True], ids=["in_worker", "in_child"])
def test_a_running_server_switches_models_under_load_without_failing_a_request(example_model, tmp_path, parse_in_child):
    config = load_config(ROOT / "config.toml")
    config = dataclasses.replace(config, server=dataclasses.replace(config.server, model_poll_seconds=0.2))
    database = f"sqlite:///{tmp_path}/c.db"
    store = ConversationStore(database)
    store.migrate()
    models_dir = tmp_path / "models"
    old = register(store, "nlu", variant(example_model, tmp_path / "old", "old"), models_dir)
    new = register(store, "nlu", variant(example_model, tmp_path / "new", "new"), models_dir)
    broken = register(store, "nlu", variant(example_model, tmp_path / "broken", "broken"), models_dir)
    Path(broken.path, "weights.pt").write_bytes(b"truncated")
    store.promote("nlu", old.version)
    runtime = BotRuntime.load(config, model_dir=Path(old.path), database_url=database, data_dir=tmp_path, seed=0, parse_in_child=parse_in_child)
    first_child = runtime.manager.understanding

    seen: list[tuple[int, str]] = []
    stop = threading.Event()

    def customers(url: str, name: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            turn = 0
            while not stop.is_set():
                parsed = client.post("/model/parse", json={"text": "where is my order B-2001?"})
                seen.append((parsed.status_code, parsed.json().get("model", "")))
                reply = client.post("/webhooks/rest/webhook", json={"sender": f"{name}-{turn // 3}", "message": "where is my order B-2001?"})
                seen.append((reply.status_code, "turn"))
                turn += 1

    with serving(create_app(runtime)) as url:
        threads = [threading.Thread(target=customers, args=(url, f"c{i}")) for i in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        store.promote("nlu", new.version)  # what `slmbot models promote` records
        deadline = time.monotonic() + 20
        while httpx.get(url + "/health").json()["model"] != new.version:
            assert time.monotonic() < deadline, "the server never switched"
            time.sleep(0.1)
        time.sleep(0.5)
        store.promote("nlu", broken.version)  # a version that cannot load: the server keeps the one it has
        time.sleep(1.0)
        stop.set()
        for thread in threads:
            thread.join()
        health = httpx.get(url + "/health").json()
        assert health["model"] == new.version and health["parsing"] == ("child process" if parse_in_child else "worker")
        if parse_in_child:  # the new model got a child of its own; the old one's has stopped
            assert isinstance(runtime.manager.understanding, ParseProcess) and runtime.manager.understanding.child.is_alive()
            assert first_child.child.exitcode == 0

    assert seen and all(status == 200 for status, _ in seen)
    models = [model for _, model in seen if model != "turn"]
    assert models[0] == old.version and set(models[-3:]) == {new.version} and set(models) == {old.version, new.version}
    store.close()
