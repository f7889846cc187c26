"""`slmbot run` as a real process: the serving benchmark's load on a small scale."""

import socket

from bench.server import SCRIPT, run


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_served_bot_answers_concurrent_conversations(example_model):
    result = run("sqlite", senders=2, rounds=1, model=example_model, port=free_port())
    assert result["turns"] == 2 * len(SCRIPT)
    assert 0 < result["p50_ms"] <= result["p99_ms"]
