"""Prometheus metrics of the dialogue: messages, turn latency, NLU confidence, fallbacks, handoffs.

With several worker processes, ``PROMETHEUS_MULTIPROC_DIR`` (set by `slmbot run --workers N`)
makes every worker write its numbers to shared files, so ``/metrics`` on any worker reports
the whole server.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from bot.types import BotReply, Parse

FALLBACK_RESPONSES = frozenset({"utter_default", "utter_clarify"})

MESSAGES = Counter("slmbot_messages", "User messages handled.", ["channel"])
TURN_SECONDS = Histogram(
    "slmbot_turn_seconds", "Time from a user message to the stored turn and its replies.", ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CONFIDENCE = Histogram("slmbot_nlu_confidence", "Calibrated intent confidence of user messages.", ["channel"], buckets=[i / 10 for i in range(1, 11)])
FALLBACKS = Counter("slmbot_fallbacks", "Turns answered with a fallback (not understood, or ambiguous).", ["channel"])
HANDOFFS = Counter("slmbot_handoffs", "Conversations handed to a human agent.", ["channel"])


def observe_turn(channel: str, seconds: float, parse: Parse, replies: list[BotReply], handed_off: bool) -> None:
    MESSAGES.labels(channel).inc()
    TURN_SECONDS.labels(channel).observe(seconds)
    CONFIDENCE.labels(channel).observe(parse.confidence)
    if any(reply.response in FALLBACK_RESPONSES for reply in replies):
        FALLBACKS.labels(channel).inc()
    if handed_off:
        HANDOFFS.labels(channel).inc()


def exposition() -> tuple[bytes, str]:
    """The text format of every metric (of all workers when running multi-process)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
