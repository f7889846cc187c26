"""The one orchestrator: load state -> parse -> decide -> run actions -> render -> save.

Turns of one conversation run one at a time (a lock per conversation), so a customer's
messages are never processed out of order; the whole turn is stored in one transaction before
any reply is returned, so an acknowledged message is never lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from anyio import to_thread

from bot.actions import ActionContext, ActionRunner
from bot.batching import MicroBatcher
from bot.channels.base import OutputChannel
from bot.coordination import Coordinator, LocalCoordinator
from bot.domain import Domain
from bot.flows import Decision, DialogueState, FlowEngine, Generate, HandOff, Policy, Respond, RunAction, SlotSet
from bot.generation import GatedReply, ReplyGenerator
from bot.logs import conversation_var
from bot.metrics import observe_turn
from bot.privacy import Redactor, redact_event
from bot.responses import ResponseRenderer
from bot.storage.store import ConversationStore, TurnWrite, as_utc
from bot.storage.tables import Conversation, PendingEvent, utc_now
from bot.types import BotReply, Parse, UserMessage
from bot.understanding import Understanding

log = logging.getLogger(__name__)
MAX_ACTIONS_PER_TURN = 20
CONTEXT_TURNS = 4


class ConversationNotFound(KeyError):
    """No conversation has this id."""


class NotHandedOff(RuntimeError):
    """An agent tried to write in a conversation the bot is still handling."""


@dataclass(frozen=True)
class Turn:
    """What one user message produced: its parse, and the replies to send in order (messages an
    agent wrote while the user was away come first)."""

    parse: Parse
    replies: list[BotReply]


def conversation_id(channel: str, sender: str) -> str:
    """Conversations are per channel and sender: the same id on two platforms is two people."""
    return f"{channel}:{sender}"


class DialogueManager:
    """Handles user messages and agent interventions for every conversation of one bot."""

    def __init__(
        self,
        domain: Domain,
        understanding: Understanding,
        store: ConversationStore,
        actions: ActionRunner,
        data_dir: Path,
        policy: Policy = Policy(),
        seed: int | None = None,
        generator: ReplyGenerator | None = None,
        coordinator: Coordinator | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.domain, self.understanding, self.store, self.actions, self.policy = domain, understanding, store, actions, policy
        self.data_dir, self.generator = data_dir, generator
        self.engine = FlowEngine(domain, policy, can_generate=generator is not None)
        self.renderer = ResponseRenderer(domain.responses, seed)
        self.outputs: dict[str, OutputChannel] = {}
        self.coordinator = coordinator or LocalCoordinator()
        self.redactor = redactor  # set: personal data is redacted before it is stored
        # Concurrent turns share one database read and one commit (and the understanding's forward pass).
        self.reader = MicroBatcher(store.conversations_and_undelivered)
        self.writer = MicroBatcher(store.save_turns)

    def add_output(self, channel: OutputChannel) -> None:
        """Let agent messages be pushed to users of ``channel``."""
        self.outputs[channel.name] = channel

    async def handle(self, message: UserMessage) -> Turn:
        """Process one user message: its parse and the replies (no bot replies while handed off).

        Undelivered messages (an agent's, on a channel that cannot push) go out first and are
        marked delivered in the same transaction as the turn.

        Raises:
            StorageUnavailable: the database is down or refused the turn; nothing was stored or acknowledged.
        """
        key = conversation_id(message.channel, message.sender)
        conversation_var.set(key)
        started = time.perf_counter()
        async with self.coordinator.hold(key):
            # Reading the conversation and parsing the message do not depend on each other: both
            # join the batches of the turns running now, side by side.
            (stored, undelivered), parse = await asyncio.gather(self.reader.submit(key), self.understanding.submit(message.text))
            events: list[PendingEvent] = []
            conversation = self._open_session(stored, message, events)
            events.append(_user_event(conversation, parse))
            decision = self.engine.on_message(self._restore(conversation.state), parse)
            replies = await self._carry_out(decision, conversation, message, events)
            delivered = [e.id for e in undelivered if e.id is not None]
            self._redact(events)
            failure = await self.writer.submit(TurnWrite(conversation, events, delivered))
            if failure is not None:
                raise failure
            waiting = [BotReply(e.text or "", response=e.response, source=e.source or "agent") for e in undelivered]
        observe_turn(message.channel, time.perf_counter() - started, parse, replies, any(e.kind == "handoff" for e in events))
        return Turn(parse, waiting + replies)

    async def parse(self, text: str) -> Parse:
        """What the bot understands of ``text`` (no conversation involved)."""
        return await self.understanding.submit(text)

    async def agent_reply(self, key: str, text: str, agent: str) -> BotReply:
        """A human agent writes to the customer of a handed-off conversation."""
        conversation_var.set(key)
        async with self.coordinator.hold(key):
            conversation = await self._existing(key)
            if not conversation.handed_off:
                raise NotHandedOff(f"conversation {key} is not handed off to an agent")
            reply = BotReply(text, source="agent", data={"agent": agent})
            return await self._push(conversation, reply, [])

    async def hand_back(self, key: str, agent: str) -> BotReply:
        """The agent is done: the bot takes the conversation again and tells the customer so."""
        async with self.coordinator.hold(key):
            conversation = await self._existing(key)
            if not conversation.handed_off:
                raise NotHandedOff(f"conversation {key} is not handed off to an agent")
            state = DialogueState.from_dict(conversation.state)
            state.handed_off, state.failures = False, 0
            conversation.state, conversation.handed_off = state.to_dict(), False
            events = [_event(conversation, "handback", data={"agent": agent})]
            reply = self.renderer.render("utter_handed_back", {"sender": conversation.sender})
            return await self._push(conversation, reply, events)

    async def _existing(self, key: str) -> Conversation:
        conversation = await to_thread.run_sync(self.store.conversation, key)
        if conversation is None:
            raise ConversationNotFound(key)
        return conversation

    async def _push(self, conversation: Conversation, reply: BotReply, events: list[PendingEvent]) -> BotReply:
        """Store ``reply`` and push it through the conversation's channel when that channel can push."""
        event = _bot_event(conversation, reply)
        event.delivered = False
        events.append(event)
        self._redact(events)
        await to_thread.run_sync(self.store.save_turn, conversation, events)
        output = self.outputs.get(conversation.channel)
        if output is not None and await output.send(conversation.sender, reply) and event.id is not None:
            await to_thread.run_sync(self.store.mark_delivered, [event.id])
        return reply

    def _redact(self, events: list[PendingEvent]) -> None:
        if self.redactor is not None:
            for event in events:
                redact_event(event, self.redactor)

    def _restore(self, data: dict[str, Any]) -> DialogueState:
        """The stored state, minus flows the project no longer has (it may have changed since)."""
        state = DialogueState.from_dict(data)
        state.stack = [frame for frame in state.stack if frame.flow in self.domain.flows]
        if state.last_flow and state.last_flow.flow not in self.domain.flows:
            state.last_flow = None
        return state

    def _open_session(self, conversation: Conversation | None, message: UserMessage, events: list[PendingEvent]) -> Conversation:
        """A new conversation, or a new session when the last activity is older than the expiry."""
        key = conversation_id(message.channel, message.sender)
        if conversation is None:
            conversation = Conversation(id=key, channel=message.channel, sender=message.sender)
        elif as_utc(conversation.updated_at) < utc_now() - timedelta(minutes=self.policy.session_expiry_minutes):
            # A handed-off conversation stays with the agent; everything else starts afresh.
            conversation.session += 1
            conversation.state = DialogueState(handed_off=conversation.handed_off).to_dict()
        else:
            return conversation
        events.append(_event(conversation, "session_started"))
        return conversation

    async def _carry_out(self, decision: Decision, conversation: Conversation, message: UserMessage, events: list[PendingEvent]) -> list[BotReply]:
        """Render responses, run actions (feeding results back to the engine), record everything."""
        replies: list[BotReply] = []
        for _ in range(MAX_ACTIONS_PER_TURN):
            for command in decision.commands:
                if isinstance(command, Respond):
                    context = {**command.context, "sender": conversation.sender}
                    reply = self.renderer.render(command.response, context, command.buttons)
                    replies.append(reply)
                    events.append(_bot_event(conversation, reply))
                elif isinstance(command, SlotSet):
                    events.append(_event(conversation, "slot", data={"slot": command.slot, "value": command.value}))
                elif isinstance(command, HandOff):
                    conversation.handed_off = True
                    events.append(_event(conversation, "handoff", data={"reason": command.reason}))
            pending = decision.pending
            if pending is None:
                break
            if isinstance(pending, Generate):
                generated = await self._generate(conversation, events, pending)
                if generated.passed:
                    reply = BotReply(generated.text, source="generator", data={"score": generated.score, "gate": "passed"})
                    replies.append(reply)
                    events.append(_bot_event(conversation, reply))
                else:
                    data = {"text": generated.text, "score": generated.score, "gate": "rejected", "reason": generated.rejected}
                    events.append(_event(conversation, "generation_rejected", data=data))
                decision = self.engine.on_generated(decision.state, generated.passed)
                continue
            result = await self.actions.run(pending.action, self._action_context(pending, conversation, message))
            events.append(_event(conversation, "action", data={"action": pending.action, "result": result.data, "error": result.error}))
            decision = self.engine.on_action_result(decision.state, result)
        else:
            log.error("conversation %s: more than %d actions in one turn; stopping", conversation.id, MAX_ACTIONS_PER_TURN)
        conversation.state = decision.state.to_dict()
        return replies

    async def _generate(self, conversation: Conversation, events: list[PendingEvent], command: Generate) -> GatedReply:
        """A gated generated reply to the last turns (stored ones plus this turn's so far)."""
        assert self.generator is not None
        generator = self.generator
        stored = await to_thread.run_sync(lambda: self.store.events(conversation.id, kinds=("user", "bot"), last=CONTEXT_TURNS))
        turns = [("user" if e.kind == "user" else "bot", e.text or "") for e in [*stored, *events] if e.kind in ("user", "bot")]
        return await to_thread.run_sync(generator.reply, turns[-CONTEXT_TURNS:], command.facts)

    def _action_context(self, command: RunAction, conversation: Conversation, message: UserMessage) -> ActionContext:
        return ActionContext(
            conversation_id=conversation.id,
            sender=conversation.sender,
            flow=command.flow,
            slots=command.slots,
            project=self.domain.root,
            data_dir=self.data_dir,
            latest_message=message.text,
            slot=command.slot,
            value=command.value,
        )


def _event(conversation: Conversation, kind: str, **fields: Any) -> PendingEvent:
    return PendingEvent(conversation.id, kind, conversation.session, **fields)


def _user_event(conversation: Conversation, parse: Parse) -> PendingEvent:
    return _event(
        conversation,
        "user",
        text=parse.text,
        intent=parse.intent,
        confidence=parse.confidence,
        entities=[vars(e) for e in parse.entities],
        model_version=parse.model_version,
        data={"ranking": [list(r) for r in parse.ranking]},
    )


def _bot_event(conversation: Conversation, reply: BotReply) -> PendingEvent:
    return _event(
        conversation,
        "bot",
        text=reply.text,
        source=reply.source,
        response=reply.response,
        buttons=[vars(b) for b in reply.buttons],
        data=reply.data,
    )
