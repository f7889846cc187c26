"""End-to-end conversation tests (``tests/conversations/*.yml``), run by `slmbot test`.

    - test: order status with the id in the first message
      steps:
        - user: where is my order A-1042?
          intent: order_status
          entities: {order_id: A-1042}
          bot: [utter_order_processing]
        - user: I want to talk to a human
          bot: [utter_handoff]
        - agent: Hi, this is Sam from the team.
        - handback: true
        - wait_minutes: 61

Each expected bot message is a response name or ``{text: ...}`` (a substring of the reply).
Every test is a fresh conversation with a fresh demo data folder, run through the real
dialogue manager, model and database.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bot.manager import conversation_id
from bot.runtime import BotRuntime
from bot.types import BotReply, UserMessage
from bot.yaml_source import YamlList, YamlMap, load_yaml
from slm.errors import DataError

CHANNEL = "test"
STEP_KINDS = ("user", "agent", "handback", "wait_minutes")


@dataclass
class ConversationTest:
    name: str
    steps: list[YamlMap]
    path: Path
    line: int


@dataclass
class TestOutcome:
    """How one test went; ``failure`` says which step and what differed."""

    test: ConversationTest
    failure: str | None = None
    transcript: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.failure is None


def load_tests(folder: Path) -> list[ConversationTest]:
    """Every test in ``folder/*.yml``, validated (errors name file and line).

    Raises:
        DataError: a file is malformed or the folder holds no tests.
    """
    tests = []
    for path in sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")]):
        data = load_yaml(path)
        if not isinstance(data, YamlList):
            raise DataError(path, 1, "expected a list of tests (- test: name / steps: [...])")
        for entry, line in zip(data, data.item_lines):
            if not isinstance(entry, YamlMap) or not isinstance(entry.get("test"), str) or not isinstance(entry.get("steps"), YamlList):
                raise DataError(path, line, "each test needs 'test: <name>' and a 'steps:' list")
            for step, step_line in zip(entry["steps"], entry["steps"].item_lines):
                if not isinstance(step, YamlMap) or not any(kind in step for kind in STEP_KINDS):
                    raise DataError(path, step_line, f"a step needs one of: {', '.join(STEP_KINDS)}")
            tests.append(ConversationTest(entry["test"], list(entry["steps"]), path, line or 0))
    if not tests:
        raise DataError(folder, None, "no conversation tests found")
    return tests


def run_in_scratch(load: Callable[[str, Path], BotRuntime], tests: list[ConversationTest]) -> list[TestOutcome]:
    """Run ``tests`` against a runtime that ``load(database_url, data_dir)`` builds on a scratch
    SQLite database and data folder, both thrown away afterwards."""
    with tempfile.TemporaryDirectory(prefix="slmbot-test-") as scratch:
        runtime = load(f"sqlite:///{scratch}/conversations.db", Path(scratch))

        async def run_all() -> list[TestOutcome]:
            try:
                return await run_tests(runtime, tests, Path(scratch))
            finally:
                await runtime.close()

        return asyncio.run(run_all())


async def run_tests(runtime: BotRuntime, tests: list[ConversationTest], data_root: Path) -> list[TestOutcome]:
    """Run ``tests`` one after another, each with its own sender and demo data folder."""
    outcomes = []
    for index, test in enumerate(tests):
        runtime.manager.data_dir = data_root / f"test-{index}"
        outcomes.append(await _run_one(runtime, test, f"t{index}"))
    return outcomes


async def _run_one(runtime: BotRuntime, test: ConversationTest, sender: str) -> TestOutcome:
    outcome = TestOutcome(test)
    manager = runtime.manager
    key = conversation_id(CHANNEL, sender)
    for number, step in enumerate(test.steps, start=1):
        where = f"{test.path}:{step.line} (step {number})"
        if "user" in step:
            text = str(step["user"])
            turn = await manager.handle(UserMessage(sender, text, CHANNEL))
            parse, replies = turn.parse, turn.replies
            outcome.transcript.append(f"user: {text}   [{parse.intent} {parse.confidence:.2f} {parse.entity_values()}]")
            outcome.transcript.extend(f"  bot: {r.text}  ({r.response or r.source})" for r in replies)
            problem = _compare(step, parse.intent, parse.entity_values(), replies)
        elif "agent" in step:
            reply = await manager.agent_reply(key, str(step["agent"]), "tester")
            outcome.transcript.append(f"agent: {reply.text}")
            problem = None
        elif "handback" in step:
            reply = await manager.hand_back(key, "tester")
            outcome.transcript.append(f"handback: {reply.text}")
            problem = None
        else:
            runtime.store.shift_activity(key, float(step["wait_minutes"]))
            outcome.transcript.append(f"... {step['wait_minutes']} minutes later")
            problem = None
        if problem:
            outcome.failure = f"{where}: {problem}"
            break
    return outcome


def _compare(step: YamlMap, intent: str, entities: dict[str, str], replies: list[BotReply]) -> str | None:
    if "intent" in step and step["intent"] != intent:
        return f"expected intent {step['intent']}, got {intent}"
    for name, value in (step.get("entities") or {}).items():
        if entities.get(name) != str(value):
            return f"expected entity {name}={value!r}, got {entities.get(name)!r}"
    if "bot" in step:
        expected: list[Any] = list(step["bot"] or [])
        if len(expected) != len(replies):
            return f"expected {len(expected)} bot message(s) {_describe(expected)}, got {len(replies)}: {[r.response or r.text for r in replies]}"
        for want, reply in zip(expected, replies):
            if isinstance(want, dict):
                if str(want.get("text", "")) not in reply.text:
                    return f"expected a reply containing {want.get('text')!r}, got {reply.text!r}"
            elif reply.response != want:
                return f"expected response {want}, got {reply.response or reply.source}: {reply.text!r}"
    return None


def _describe(expected: list[Any]) -> str:
    return str([w if isinstance(w, str) else f"text~{w.get('text')!r}" for w in expected])
