"""Response templates: jinja2 text with variations and buttons, rendered against the conversation's slots."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta

from bot.types import BotReply, Button

log = logging.getLogger(__name__)

# Responses the dialogue manager itself uses; a project overrides any of them by defining the name.
BUILTIN_RESPONSES = {
    "utter_default": "Sorry, I can't help with that. I can track orders, handle returns, refunds, cancellations and address changes.",
    "utter_clarify": "Sorry, I'm not sure I understood. Did you mean one of these?",
    "utter_handoff": "I'm passing you to a colleague from our team. They'll reply here shortly.",
    "utter_flow_cancelled": "OK, I've stopped that. Anything else I can do for you?",
    "utter_action_failed": "Sorry, something went wrong on our side. Please try again in a moment.",
    "utter_invalid_slot": "Sorry, '{{ value }}' doesn't look like a valid {{ slot | replace('_', ' ') }}.",
    "utter_handed_back": "You're back with the shop assistant. How can I help?",
    "utter_text_only": "Sorry, I can only read text messages. Please type your question.",
}

# Names every template may use besides the slots and action results of the flows.
CONTEXT_NAMES = frozenset({"slot", "value", "flow", "error", "slots", "sender"})


@dataclass(frozen=True)
class ResponseVariant:
    """One way of saying a response."""

    text: str
    buttons: tuple[Button, ...] = ()
    image: str | None = None


@dataclass(frozen=True)
class Response:
    """A named response and its variations (one is picked at random each time)."""

    name: str
    variants: tuple[ResponseVariant, ...]
    path: Path
    line: int


def template_environment() -> jinja2.Environment:
    """The jinja2 environment for response text: plain text out, undefined variables are errors."""
    return jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)


def template_variables(environment: jinja2.Environment, text: str) -> set[str]:
    """The top-level variables a template reads.

    Raises:
        jinja2.TemplateSyntaxError: the template does not parse.
    """
    return meta.find_undeclared_variables(environment.parse(text))


class ResponseRenderer:
    """Picks a variation and renders it; ``seed`` makes the choice reproducible (tests)."""

    def __init__(self, responses: dict[str, Response], seed: int | None = None) -> None:
        self.responses = responses
        self.environment = template_environment()
        self.random = random.Random(seed)
        self.compiled: dict[str, jinja2.Template] = {}  # compiling costs more than rendering

    def _template(self, text: str) -> jinja2.Template:
        if text not in self.compiled:
            self.compiled[text] = self.environment.from_string(text)
        return self.compiled[text]

    def render(self, name: str, context: dict[str, Any], extra_buttons: tuple[Button, ...] = ()) -> BotReply:
        """The reply for response ``name``; a template that fails at run time gives the failure message."""
        variant = self.random.choice(self.responses[name].variants)
        try:
            text = self._template(variant.text).render(context)
            buttons = tuple(Button(self._template(b.title).render(context), self._template(b.payload).render(context)) for b in variant.buttons)
        except jinja2.TemplateError as error:
            log.error("response %s failed to render: %s", name, error)
            fallback = self.responses["utter_action_failed"].variants[0]
            return BotReply(fallback.text, response="utter_action_failed", data={"render_error": str(error)})
        return BotReply(text.strip(), buttons + extra_buttons, variant.image, response=name)
