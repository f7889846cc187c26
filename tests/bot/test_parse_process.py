"""Parsing in a child process: the same parses as in the worker, batched, and never a lost turn."""

import asyncio
import os
import shutil
import signal
import subprocess
import sys

import httpx
import pytest

from bot.config import load_config
from bot.parse_process import ParseProcess, ParseProcessError
from bot.runtime import BotRuntime
from bot.server import create_app
from bot.trained_models import model_version
from bot.understanding import Lexicon, LocalUnderstanding
from slm.manifest import NLULabels
from slm.nlu import NLUModel
from tests.conftest import ROOT
from tests.servers import serving

TEXTS = ["where is my order A-1042?", "hi", "/order_status", "I want to return the yoga mat from order C-3310", "thanks", "bye"]


def in_worker(model_dir) -> LocalUnderstanding:
    """The same model parsing in this process: what the child's answers must equal."""
    return LocalUnderstanding(NLUModel.load(model_dir), Lexicon.from_entries([]), model_version(model_dir))


def start_child(model_dir, version: str | None = None) -> ParseProcess:
    return ParseProcess(model_dir, Lexicon.from_entries([]), version or model_version(model_dir), NLULabels.of(model_dir))


def summary(parse) -> tuple:
    return parse.intent, round(parse.confidence, 4), [(e.entity, e.value, e.start, e.end) for e in parse.entities], parse.model_version


@pytest.fixture
def child(example_model):
    understanding = start_child(example_model)
    yield understanding
    understanding.child.kill()  # closed by the test, on its event loop; this is for a test that failed first


def run_then_close(child: ParseProcess, scenario):
    """Run ``scenario`` then close ``child`` on one event loop (the child's socket belongs to the loop that used it)."""

    async def both():
        try:
            return await scenario()
        finally:
            await child.close()

    return asyncio.run(both())


def test_the_child_parses_concurrent_texts_as_the_worker_does_and_batches_them(child, example_model):
    answers: list[int] = []
    answer = child._answer
    child._answer = lambda count, outcome: (answers.append(count), answer(count, outcome))

    async def scenario():
        return await asyncio.gather(*(child.submit(text) for text in TEXTS * 5))

    parses = run_then_close(child, scenario)
    expected = in_worker(example_model).parse_many(TEXTS * 5)
    assert [summary(p) for p in parses] == [summary(p) for p in expected]
    assert not child.pending and child.child.exitcode == 0 and child.parsing == "child process"
    assert sum(answers) == len(TEXTS) * 5 and max(answers) > 1, answers  # texts that came while it was busy made one batch


def test_a_new_child_answers_the_texts_in_flight_when_the_child_dies(child, example_model):
    async def scenario():
        first = await child.submit("hi")
        dead = child.child
        os.kill(dead.pid, signal.SIGKILL)
        in_flight = await asyncio.gather(*(child.submit(text) for text in TEXTS))
        return dead, first, in_flight, await child.submit("where is my order A-1042?")

    dead, first, in_flight, after = run_then_close(child, scenario)
    assert first.intent == "greet"
    assert [summary(p) for p in in_flight] == [summary(p) for p in in_worker(example_model).parse_many(TEXTS)]
    assert after.intent == "order_status" and child.child is not dead and child.child.exitcode == 0


def test_a_text_in_flight_when_two_children_die_fails_and_the_next_child_serves_on(child, monkeypatch):
    async def scenario():
        await child.submit("hi")
        killed = []
        restart = child._restart

        def restart_then_kill_once():
            restart()
            if not killed:  # the new child dies too before it answers what it was sent
                killed.append(child.child.pid)
                child.child.kill()

        monkeypatch.setattr(child, "_restart", restart_then_kill_once)
        os.kill(child.child.pid, signal.SIGKILL)
        outcome = await asyncio.gather(child.submit("where is my order A-1042?"), return_exceptions=True)
        return outcome[0], await child.submit("hi")

    failed, later = run_then_close(child, scenario)
    assert isinstance(failed, ParseProcessError) and "2 parsing processes exited" in str(failed)
    assert later.intent == "greet"


def test_when_no_new_child_can_start_texts_fail_clearly_until_one_can(example_model, tmp_path):
    copy = tmp_path / "nlu"
    shutil.copytree(example_model, copy)
    child = start_child(copy)
    weights = (copy / "weights.pt").read_bytes()

    async def scenario():
        await child.submit("hi")
        (copy / "weights.pt").write_bytes(b"truncated")
        os.kill(child.child.pid, signal.SIGKILL)
        with pytest.raises(ParseProcessError, match="no parsing process could be started: .*weights.pt: truncated"):
            await child.submit("hi")
        down = child.available, child.parsing
        (copy / "weights.pt").write_bytes(weights)
        return down, await child.submit("where is my order A-1042?")

    try:
        (available, parsing), later = run_then_close(child, scenario)
    finally:
        child.child.kill()
    assert not available and parsing.startswith("nowhere: no parsing process could be started")
    assert later.intent == "order_status" and child.available and child.parsing == "child process"


def test_a_server_without_a_parsing_process_refuses_messages_with_503_and_says_so_on_health(example_model, tmp_path):
    copy = tmp_path / "nlu"
    shutil.copytree(example_model, copy)
    weights = (copy / "weights.pt").read_bytes()
    config = load_config(ROOT / "config.toml")
    runtime = BotRuntime.load(config, model_dir=copy, database_url=f"sqlite:///{tmp_path}/c.db", data_dir=tmp_path, parse_in_child=True)
    child = runtime.manager.understanding
    assert isinstance(child, ParseProcess)
    message = {"sender": "ann", "message": "where is my order A-1042?"}
    with serving(create_app(runtime)) as url, httpx.Client(base_url=url, timeout=60) as client:
        assert client.post("/webhooks/rest/webhook", json=message).status_code == 200
        (copy / "weights.pt").write_bytes(b"truncated")
        os.kill(child.child.pid, signal.SIGKILL)
        refused = client.post("/webhooks/rest/webhook", json=message)
        assert refused.status_code == 503 and "not accepted" in refused.json()["detail"] and "weights.pt" in refused.json()["detail"]
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["parsing"].startswith("nowhere")
        (copy / "weights.pt").write_bytes(weights)
        assert client.post("/webhooks/rest/webhook", json=message).status_code == 200
        health = client.get("/health")
        assert health.status_code == 200 and health.json()["parsing"] == "child process"
    stored = [e.text for e in runtime.store.events("rest:ann", kinds=("user",))]
    assert stored == [message["message"]] * 2  # the refused message was not stored


def test_close_waits_for_the_texts_sent_then_stops_the_child_and_refuses_more(child, example_model):
    async def scenario():
        sent = [child.submit(text) for text in TEXTS]  # queued by the call, awaited or not
        await child.close()
        with pytest.raises(ParseProcessError, match="shut down"):
            await child.submit("hi")
        return [parse.result() for parse in sent]

    answered = asyncio.run(scenario())
    assert [p.intent for p in answered] == [p.intent for p in in_worker(example_model).parse_many(TEXTS)]
    assert child.child.exitcode == 0


def test_a_child_that_finds_another_model_in_the_directory_refuses_to_start(example_model, tmp_path):
    copy = tmp_path / "nlu"
    shutil.copytree(example_model, copy)
    with pytest.raises(ParseProcessError, match=r"did not start: ParseProcessError: .* now holds model \w+, not stale"):
        start_child(copy, "stale")
    labels = NLULabels.of(copy)
    (copy / "weights.pt").write_bytes(b"truncated")
    with pytest.raises(ParseProcessError, match=r"did not start: CheckpointError: .*weights.pt: truncated"):
        ParseProcess(copy, Lexicon.from_entries([]), model_version(copy), labels)


def test_a_worker_that_parses_in_a_child_never_imports_torch(example_model, tmp_path):
    """Importing torch alone costs a process ~280 MB: only the child may."""
    script = f"""
import asyncio, sys
from pathlib import Path
from bot.config import load_config
from bot.runtime import BotRuntime
from bot.server import create_app
runtime = BotRuntime.load(load_config(Path({str(ROOT / "config.toml")!r})), model_dir=Path({str(example_model)!r}),
                          database_url="sqlite:///{tmp_path}/t.db", data_dir=Path({str(tmp_path)!r}), parse_in_child=True)
create_app(runtime)
async def turn():
    from bot.types import UserMessage
    reply = await runtime.manager.handle(UserMessage("ann", "where is my order A-1042?", "rest"))
    await runtime.close()
    return reply
turn = asyncio.run(turn())
assert turn.parse.intent == "order_status", turn.parse
print("torch" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
