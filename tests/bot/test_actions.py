"""Custom actions: Python functions from a project file and HTTP webhooks over real local HTTP."""

import asyncio
import json
import sqlite3
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bot.actions import ActionContext, ActionRunner, load_actions_module
from bot.domain import HttpAction
from slm.errors import DataError

CONTEXT = ActionContext("rest:u1", "u1", "flow", {"order_id": "A-1042"}, Path("."), Path("."))


def write_actions(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "actions.py"
    path.write_text("from bot.actions import action\n\n" + body)
    return path


def test_marked_functions_are_collected(tmp_path):
    path = write_actions(
        tmp_path,
        "@action('echo')\nasync def echo(ctx):\n    return {'order': ctx.slots['order_id']}\n\nasync def helper(ctx):\n    return {}\n",
    )
    found = load_actions_module(path)
    assert list(found) == ["echo"]
    result = asyncio.run(ActionRunner(found, {}).run("echo", CONTEXT))
    assert result.ok and result.data == {"order": "A-1042"}


def test_sync_action_is_rejected_at_import(tmp_path):
    path = write_actions(tmp_path, "@action('bad')\ndef bad(ctx):\n    return {}\n")
    with pytest.raises(DataError, match="failed to import: TypeError: action 'bad' must be an async function"):
        load_actions_module(path)


@pytest.mark.parametrize(
    "body, error",
    [
        ("    raise ValueError('no such order')\n", "action 'a' ValueError: no such order"),
        ("    return ['not', 'a', 'dict']\n", "action 'a' returned list, expected a dict or None"),
        ("    import asyncio\n    await asyncio.sleep(5)\n", "action 'a' timed out after 0.2 s"),
        ("    return {'when': {1, 2}}\n", "action 'a' returned data that is not JSON-ready: Object of type set is not JSON serializable"),
    ],
)
def test_failures_become_error_results(tmp_path, body, error):
    actions = load_actions_module(write_actions(tmp_path, f"@action('a')\nasync def a(ctx):\n{body}"))
    result = asyncio.run(ActionRunner(actions, {}, timeout=0.2).run("a", CONTEXT))
    assert not result.ok and result.error == error


class WebhookHandler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/slow":
            time.sleep(1.0)
        status, body = (500, b"oops") if self.path == "/fail" else (200, json.dumps({"echo": payload}).encode())
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (the timeout test)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def webhook_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), WebhookHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def run_http(url: str, timeout: float = 2.0):
    async def go():
        runner = ActionRunner({}, {"hook": HttpAction("hook", url, timeout)})
        try:
            return await runner.run("hook", CONTEXT)
        finally:
            await runner.close()

    return asyncio.run(go())


def test_http_action_posts_the_context_and_returns_the_json(webhook_server):
    result = run_http(f"{webhook_server}/ok")
    assert result.ok
    assert result.data["echo"]["action"] == "hook"
    assert result.data["echo"]["slots"] == {"order_id": "A-1042"}
    assert "project" not in result.data["echo"]


def test_http_action_errors_and_timeouts(webhook_server):
    failed = run_http(f"{webhook_server}/fail")
    assert failed.error == f"action 'hook' RuntimeError: {webhook_server}/fail answered HTTP 500"
    slow = run_http(f"{webhook_server}/slow", timeout=0.2)
    assert slow.error == "action 'hook' timed out after 0.2 s"
    refused = run_http("http://127.0.0.1:9/none")
    assert not refused.ok and "ConnectError" in refused.error


def test_example_shop_returns_created_at_once_get_distinct_codes(tmp_path):
    """The example bot's return codes come from the inserted row, so concurrent returns never
    share one, and its shop database runs in WAL mode (reads do not wait for writes)."""
    shop = load_actions_module(Path(__file__).resolve().parents[2] / "dialogues" / "actions.py")
    runner = ActionRunner(shop, {})

    def context(sender: str) -> ActionContext:
        slots = {"order_id": "c-3310", "product": "yoga mat", "email": f"{sender}@example.com"}
        return ActionContext(f"rest:{sender}", sender, "return_item", slots, Path("."), tmp_path)

    async def create_many() -> list:
        return await asyncio.gather(*(runner.run("create_return", context(f"u{i}")) for i in range(8)))

    results = asyncio.run(create_many())
    assert all(r.ok and r.data["created"] for r in results)
    assert sorted(r.data["code"] for r in results) == [f"R-{1000 + i}" for i in range(1, 9)]
    with sqlite3.connect(tmp_path / "shop.db") as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_example_shop_writes_at_once_and_waits_in_its_thread_only_when_the_file_is_locked(tmp_path):
    """A write is made on the event loop (even while the shop's writing thread is busy); one that
    finds another process's write lock goes to that thread, which waits for the lock there: the
    event loop goes on meanwhile, and the write lands once the lock is free."""
    shop = load_actions_module(Path(__file__).resolve().parents[2] / "dialogues" / "actions.py")
    runner = ActionRunner(shop, {})
    slots = {"order_id": "C-3310", "product": "yoga mat", "email": "ann@example.com"}
    context = ActionContext("rest:ann", "ann", "return_item", slots, Path("."), tmp_path)
    writing_thread_busy = threading.Event()
    shop["create_return"].__globals__["_writer"].submit(writing_thread_busy.wait, 30)
    first = asyncio.run(runner.run("create_return", context))  # written on the event loop: no thread needed
    writing_thread_busy.set()
    assert first.ok and first.data["code"] == "R-1001"

    other_process = sqlite3.connect(tmp_path / "shop.db", isolation_level=None)
    other_process.execute("BEGIN IMMEDIATE")  # holds the write lock

    async def write_while_locked() -> tuple:
        ticks = 0
        task = asyncio.ensure_future(runner.run("create_return", context))
        while not task.done():
            await asyncio.sleep(0.01)
            ticks += 1
            if ticks == 20:  # 0.2 s with the lock held: the loop kept running, the write waited
                assert not task.done()
                other_process.execute("COMMIT")
        return await task, ticks

    second, ticks = asyncio.run(write_while_locked())
    assert second.ok and second.data["code"] == "R-1002" and ticks >= 20
    assert other_process.execute("SELECT count(*) FROM returns").fetchone()[0] == 2


def test_example_shop_write_that_fails_leaves_no_transaction_open(tmp_path):
    """A failed write is rolled back: the event loop's connection must not keep the file's write
    lock (every later write, in any process, would wait for it)."""
    shop = load_actions_module(Path(__file__).resolve().parents[2] / "dialogues" / "actions.py")
    module = shop["create_return"].__globals__
    context = ActionContext("rest:ann", "ann", "return_item", {}, Path("."), tmp_path)
    with pytest.raises(sqlite3.IntegrityError):
        asyncio.run(module["_query"](context, "INSERT INTO orders (id) VALUES (?)", "A-1042", write=True))
    assert not module["_connect"](tmp_path).in_transaction
    with sqlite3.connect(tmp_path / "shop.db", timeout=0) as other_process:
        other_process.execute("UPDATE orders SET address = 'x' WHERE id = 'A-1042'")
