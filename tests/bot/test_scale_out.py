"""Two worker processes on the machine's PostgreSQL and Redis: nothing lost, duplicated or reordered.

The server is the real `slmbot run --workers 2`; clients talk REST and WebSocket at once.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections import defaultdict

import httpx
import pytest
from sqlalchemy import create_engine, text
from websockets.asyncio.client import connect

from tests.conftest import ROOT
from tests.servers import free_port

pytestmark = pytest.mark.slow
SCRIPT = [
    "hi", "where is my order?", "B-2001", "what are your opening hours?", "I want to return something",
    "C-3310", "the yoga mat", "jane@example.com", "thanks", "bye",
]
CONVERSATIONS = 100


@pytest.fixture
def two_workers(example_model, postgres_url, redis_url, tmp_path):
    port = free_port()
    scratch = tmp_path / "tmp"  # where the server makes its metrics folder
    scratch.mkdir()
    env = {**os.environ, "DATABASE_URL": postgres_url, "REDIS_URL": redis_url, "OMP_NUM_THREADS": "1", "SLMBOT_API_TOKEN": "t",
           "TMPDIR": str(scratch)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [sys.executable, "-m", "bot", "run", "--workers", "2", "--port", str(port), "--model", str(example_model), "--data-dir", str(tmp_path)]
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(url + "/health").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"the server did not start:\n{(tmp_path / 'server.log').read_text()}")
        time.sleep(0.2)
    time.sleep(2)  # the second worker loads its model a moment after the first answers
    yield url
    server.terminate()
    assert server.wait(timeout=30) == 0, (tmp_path / "server.log").read_text()
    assert not list(scratch.glob("slmbot-metrics-*"))  # removed once the workers stopped


async def rest_conversation(client: httpx.AsyncClient, sender: str) -> list[list[str]]:
    replies = []
    for message in SCRIPT:
        response = await client.post("/webhooks/rest/webhook", json={"sender": sender, "message": message})
        assert response.status_code == 200, response.text
        replies.append([r["text"] for r in response.json()])
    return replies


async def socket_conversation(url: str, session: str) -> list[list[str]]:
    replies = []
    async with connect(url.replace("http", "ws") + f"/ws/chat?session={session}") as socket:
        for message in SCRIPT:
            await socket.send(json.dumps({"text": message}))
            turn = []
            while (frame := json.loads(await socket.recv()))["type"] != "done":
                assert frame["type"] in ("typing", "bot"), frame
                if frame["type"] == "bot":
                    turn.append(frame["text"])
            replies.append(turn)
    return replies


def stored_events(postgres_url: str) -> dict[str, list[tuple[str, str]]]:
    engine = create_engine(postgres_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT conversation_id, kind, text FROM event WHERE kind IN ('user', 'bot') ORDER BY id")).all()
    engine.dispose()
    events: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for conversation, kind, message in rows:
        events[conversation].append((kind, message))
    return events


def test_100_conversations_over_rest_and_websocket_on_two_workers(two_workers, postgres_url):
    run = uuid.uuid4().hex[:8]
    rest_senders = [f"rest-{run}-{i}" for i in range(CONVERSATIONS // 2)]
    sessions = [f"ws-{run}-{i}" for i in range(CONVERSATIONS // 2)]

    async def everyone():
        async with httpx.AsyncClient(base_url=two_workers, timeout=60, limits=httpx.Limits(max_connections=CONVERSATIONS)) as client:
            return await asyncio.gather(
                *(rest_conversation(client, sender) for sender in rest_senders),
                *(socket_conversation(two_workers, session) for session in sessions),
            )

    results = asyncio.run(everyone())
    stored = stored_events(postgres_url)
    keys = [f"rest:{s}" for s in rest_senders] + [f"web:{s}" for s in sessions]
    for key, replies in zip(keys, results):
        events = stored[key]
        # Every message stored exactly once, in the order sent...
        assert [message for kind, message in events if kind == "user"] == SCRIPT, key
        # ...each followed by exactly the replies its sender received, in order.
        turns: list[list[str]] = []
        for kind, message in events:
            if kind == "user":
                turns.append([])
            else:
                turns[-1].append(message)
        assert turns == replies, key
        assert "has shipped" in replies[2][0] and "jane@example.com" in replies[7][0], key


def test_a_burst_from_one_customer_is_serialized_across_workers(two_workers, postgres_url):
    sender = f"burst-{uuid.uuid4().hex[:8]}"
    burst = [f"where is order B-20{i:02d}?" for i in range(20)]

    async def send_all():
        # One connection per message, so the kernel spreads them over both workers.
        async def one(message: str) -> httpx.Response:
            async with httpx.AsyncClient(base_url=two_workers, timeout=60) as client:
                return await client.post("/webhooks/rest/webhook", json={"sender": sender, "message": message})

        return await asyncio.gather(*(one(m) for m in burst))

    responses = asyncio.run(send_all())
    assert [r.status_code for r in responses] == [200] * len(burst)
    events = stored_events(postgres_url)[f"rest:{sender}"]
    assert sorted(message for kind, message in events if kind == "user") == sorted(burst)  # each exactly once
    assert len([kind for kind, _ in events if kind == "bot"]) == sum(len(r.json()) for r in responses)
    # Had two first turns overlapped, both would have opened the conversation.
    engine = create_engine(postgres_url)
    with engine.connect() as connection:
        started = connection.execute(
            text("SELECT count(*) FROM event WHERE conversation_id = :c AND kind = 'session_started'"), {"c": f"rest:{sender}"}
        ).scalar()
    engine.dispose()
    assert started == 1


def test_an_agent_reply_on_one_worker_reaches_a_socket_on_the_other(two_workers):
    session = f"agent-{uuid.uuid4().hex[:8]}"

    async def scenario():
        async with connect(two_workers.replace("http", "ws") + f"/ws/chat?session={session}") as socket:
            await socket.send(json.dumps({"text": "I want to talk to a human"}))
            while json.loads(await socket.recv())["type"] != "done":
                pass
            # Many separate connections: with two workers, some land on the one without the socket.
            async with httpx.AsyncClient(base_url=two_workers, headers={"Authorization": "Bearer t"}) as client:
                for i in range(6):
                    async with httpx.AsyncClient(base_url=two_workers, headers={"Authorization": "Bearer t"}) as fresh:
                        sent = await fresh.post(f"/conversations/web:{session}/agent", json={"text": f"agent says {i}", "agent": "sam"})
                        assert sent.status_code == 200
                received = [json.loads(await asyncio.wait_for(socket.recv(), 10))["text"] for _ in range(6)]
                transcript = (await client.get(f"/conversations/web:{session}")).json()
        return received, transcript

    received, transcript = asyncio.run(scenario())
    assert received == [f"agent says {i}" for i in range(6)]
    agent_events = [e for e in transcript["events"] if e.get("source") == "agent"]
    assert len(agent_events) == 6 and all(e["kind"] == "bot" for e in agent_events)
