"""The bot's own training pairs for the reply generator.

1. Template replies: every intent example is run through the real flow engine, as the first
   message of a conversation, and the responses it would send are rendered with the example's
   entity values (up to the first action, whose result is not known offline).
2. Agent replies: what human agents wrote in handed-off conversations, with the turns before.
"""

from __future__ import annotations

from bot.domain import Domain
from bot.flows import DialogueState, FlowEngine, Respond
from bot.privacy import Redactor
from bot.responses import ResponseRenderer
from bot.storage.store import ConversationStore
from bot.storage.tables import Event
from bot.types import Entity, Parse
from slm.dialogue_corpora import DialoguePair, render_context

CONTEXT_TURNS = 4


def template_pairs(domain: Domain, seed: int = 0) -> list[DialoguePair]:
    """One pair per distinct (example, reply); examples whose reply needs an action result are skipped."""
    engine = FlowEngine(domain)
    renderer = ResponseRenderer(domain.responses, seed)
    pairs: dict[tuple[str, str], DialoguePair] = {}
    for example in domain.examples:
        entities = tuple(Entity(s.label, example.text[s.start : s.end], s.start, s.end, example.text[s.start : s.end]) for s in example.spans)
        parse = Parse(example.text, example.intent, 1.0, ((example.intent, 1.0),), entities)
        decision = engine.on_message(DialogueState(), parse)
        replies = [renderer.render(c.response, c.context, c.buttons) for c in decision.commands if isinstance(c, Respond)]
        if not replies or any(r.response == "utter_action_failed" for r in replies):
            continue
        facts = [f"intent {example.intent}"]
        if entities:
            facts.append(" ; ".join(f"{e.entity} {e.value}" for e in entities))
        context = render_context([("user", example.text)], facts)
        response = " ".join(r.text for r in replies)
        pairs.setdefault((context, response), DialoguePair(context, response, tuple(e.value.lower() for e in entities)))
    return list(pairs.values())


def agent_pairs(store: ConversationStore, redactor: Redactor) -> list[DialoguePair]:
    """Every agent reply in the store, with up to four turns before it as context, personal data redacted."""
    pairs = []
    for conversation_id in store.agent_conversations():
        turns: list[tuple[str, str]] = []
        for event in store.events(conversation_id, kinds=("user", "bot")):
            text = redactor.redact(event.text or "").text
            if event.source == "agent" and turns:
                pairs.append(DialoguePair(render_context(turns[-CONTEXT_TURNS:]), text))
            turns.append(("user" if event.kind == "user" else "bot", text))
    return pairs


def annotated_reply_pairs(store: ConversationStore, redactor: Redactor) -> list[DialoguePair]:
    """The better replies reviewers wrote for bot messages, each with the turns before that message."""
    pairs = []
    transcripts: dict[str, list[Event]] = {}  # each conversation read once, however many replies it has
    for annotation in store.annotations():
        if annotation.reply is None or annotation.event_id is None:
            continue
        event = store.event(annotation.event_id)
        if event is None:
            continue
        if event.conversation_id not in transcripts:
            transcripts[event.conversation_id] = store.events(event.conversation_id, kinds=("user", "bot"))
        before = [e for e in transcripts[event.conversation_id] if e.id is not None and e.id < annotation.event_id]
        turns = [("user" if e.kind == "user" else "bot", redactor.redact(e.text or "").text) for e in before[-CONTEXT_TURNS:]]
        if turns:
            pairs.append(DialoguePair(render_context(turns), annotation.reply))
    return pairs
