"""The pure flow engine: (state, parse) -> (new state, commands). No I/O, no clock, no model.

The orchestrator (`bot.manager`) feeds it a user's parsed message, carries out the commands it
returns (render a response, run an action, hand off), and feeds action results back with
`FlowEngine.on_action_result`. A flow waits for the user only while it collects slots, so a
conversation's position is a stack of `Frame` values that serialize to JSON between turns.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Union

import jinja2

from bot import json_codec
from bot.actions import ActionResult
from bot.domain import Domain
from bot.flow_spec import Flow, SlotSpec
from bot.responses import template_environment
from bot.types import Button, Parse

log = logging.getLogger(__name__)
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
TRUE_WORDS = {"true", "yes", "y", "1", "yeah", "yep", "sure"}
FALSE_WORDS = {"false", "no", "n", "0", "nope"}
MAX_STACK = 3


@dataclass(frozen=True)
class Policy:
    """The dialogue manager's thresholds and conventions (``[dialogue]`` in config.toml)."""

    fallback_threshold: float = 0.5
    ambiguity_margin: float = 0.05
    max_failures: int = 2
    session_expiry_minutes: float = 60.0
    cancel_intent: str = "stop"
    inform_intent: str = "inform"
    generator_fallback: bool = True


@dataclass
class Frame:
    """One flow in progress: its slots, action results and position."""

    flow: str
    slots: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    pc: int = 0
    asking: str | None = None
    validating: list[list[Any]] = field(default_factory=list)
    waiting: dict[str, Any] | None = None


@dataclass
class DialogueState:
    """Everything the engine remembers about a conversation between turns."""

    stack: list[Frame] = field(default_factory=list)
    handed_off: bool = False
    failures: int = 0
    last_flow: Frame | None = None
    generating: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the conversation store, sharing nothing with the state. Made
        through JSON, the form the store keeps anyway (15x faster than `dataclasses.asdict`)."""
        return json_codec.plain(self)

    def copy(self) -> DialogueState:
        """A deep copy: the engine never changes the state it was given."""
        return DialogueState.from_dict(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> DialogueState:
        """Inverse of `to_dict`; ``None`` or ``{}`` is a fresh conversation."""
        if not data:
            return cls()
        last = data.get("last_flow")
        return cls(
            stack=[Frame(**frame) for frame in data.get("stack", [])],
            handed_off=bool(data.get("handed_off", False)),
            failures=int(data.get("failures", 0)),
            last_flow=Frame(**last) if last else None,
            generating=data.get("generating"),
        )


@dataclass(frozen=True)
class Respond:
    """Send response ``response`` rendered with ``context``, plus any ``buttons``."""

    response: str
    context: dict[str, Any] = field(default_factory=dict)
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True)
class RunAction:
    """Run custom action ``action``; the engine waits for `FlowEngine.on_action_result`."""

    action: str
    flow: str
    slots: dict[str, Any]
    slot: str | None = None
    value: Any = None


@dataclass(frozen=True)
class Generate:
    """Ask the response generator for a reply; the engine waits for `FlowEngine.on_generated`.

    ``facts`` (intent, slots, action results) go into the generator's context next to the turns.
    """

    facts: tuple[str, ...]


@dataclass(frozen=True)
class SlotSet:
    """A slot got a value (recorded in the conversation log)."""

    slot: str
    value: Any


@dataclass(frozen=True)
class HandOff:
    """The conversation goes to a human; the bot stays silent until an agent hands it back."""

    reason: str


Command = Union[Respond, RunAction, Generate, SlotSet, HandOff]


@dataclass
class Decision:
    """The new state and what to do; when the last command is a `RunAction`, its result is awaited."""

    state: DialogueState
    commands: list[Command] = field(default_factory=list)

    @property
    def pending(self) -> RunAction | Generate | None:
        """The action or generation whose result the engine waits for, if any."""
        last = self.commands[-1] if self.commands else None
        return last if isinstance(last, (RunAction, Generate)) else None


class FlowEngine:
    """Decides what the bot does next; see the module docstring."""

    def __init__(self, domain: Domain, policy: Policy = Policy(), can_generate: bool = False) -> None:
        self.domain, self.policy = domain, policy
        self.can_generate = can_generate
        self.expressions = template_environment()
        self.conditions: dict[str, Any] = {}  # compiled once per condition text

    def on_message(self, state: DialogueState, parse: Parse) -> Decision:
        """React to one parsed user message."""
        decision = Decision(state.copy())
        state, out = decision.state, decision.commands
        if state.handed_off:
            return decision
        confident = self._confident(parse)
        if confident and parse.intent == self.policy.cancel_intent and state.stack:
            state.stack.clear()
            state.failures = 0
            out.append(Respond("utter_flow_cancelled"))
            return decision
        if state.stack:
            proceed = self._continue_flow(state, parse, confident, out)
        else:
            proceed = self._start(state, parse, confident, out)
        if proceed and decision.pending is None:
            self._advance(state, out)
        return decision

    def on_action_result(self, state: DialogueState, result: ActionResult) -> Decision:
        """Resume after the `RunAction` the previous decision ended with."""
        decision = Decision(state.copy())
        state, out = decision.state, decision.commands
        frame = state.stack[-1]
        waiting, frame.waiting = frame.waiting, None
        assert waiting is not None, "on_action_result without a pending action"
        if not result.ok:
            out.append(Respond("utter_action_failed", {"error": result.error}))
            state.stack.pop()
        elif waiting["slot"] is not None:
            spec = self.domain.flows[frame.flow].slot(waiting["slot"])
            assert spec is not None
            # Whatever else a validator returns is kept under its name for templates and conditions.
            frame.results[str(spec.validator)] = {k: v for k, v in result.data.items() if k not in ("valid", "value")}
            if result.data.get("valid", True):
                self._set(frame, spec.name, result.data.get("value", waiting["value"]), out)
            else:
                context = {**self._context(frame), **result.data, "slot": spec.name, "value": waiting["value"]}
                out.append(Respond(spec.invalid, context))
        else:
            frame.results[waiting["save_as"]] = result.data
        self._advance(state, out)
        return decision

    def on_generated(self, state: DialogueState, passed: bool) -> Decision:
        """Resume after a `Generate`: ``passed`` says whether a generated reply got through the safety gate."""
        decision = Decision(state.copy())
        state, out = decision.state, decision.commands
        pending, state.generating = state.generating, None
        assert pending is not None, "on_generated without a pending generation"
        if passed:
            state.failures = 0 if pending["fallback"] == "handoff" else state.failures
        elif pending["fallback"] == "handoff":
            self._hand_off(state, "utter_handoff", pending["reason"], out)
        elif pending["response"]:
            out.append(Respond(pending["response"], self._context(state.stack[-1]) if state.stack else {}))
        if pending["in_flow"] and not state.handed_off:
            self._advance(state, out)
        return decision

    def _generate(self, state: DialogueState, facts: list[str], out: list[Command], *, fallback: str, response: str | None = None, reason: str = "", in_flow: bool = False) -> None:
        """Wait for a generated reply; ``fallback`` (respond or handoff) happens if the gate rejects it."""
        state.generating = {"fallback": fallback, "response": response, "reason": reason, "in_flow": in_flow}
        out.append(Generate(tuple(facts)))

    def _confident(self, parse: Parse) -> bool:
        if parse.confidence < self.policy.fallback_threshold:
            return False
        runner_up = parse.ranking[1][1] if len(parse.ranking) > 1 else 0.0
        return parse.confidence - runner_up >= self.policy.ambiguity_margin

    def _start(self, state: DialogueState, parse: Parse, confident: bool, out: list[Command]) -> bool:
        """No flow is open: start one, answer, take a correction, or ask to clarify; True to run the flow."""
        if not confident:
            self._not_understood(state, parse, out)
            return False
        state.failures = 0
        flow = self.domain.flow_for(parse.intent)
        if flow is not None:
            self._push(state, flow, parse, out)
        elif parse.intent in self.domain.answers:
            out.append(Respond(self.domain.answers[parse.intent]))
        elif parse.intent == self.policy.inform_intent and state.last_flow and self._corrects(state.last_flow, parse):
            # "actually it's order B-2001": run the flow that just ended again with the corrected slot.
            redo = Frame(state.last_flow.flow, slots=dict(state.last_flow.slots))
            state.stack.append(redo)
            self._fill(redo, self._entity_fills(self.domain.flows[redo.flow], parse), out)
        elif self.can_generate and self.policy.generator_fallback:
            self._generate(state, _parse_facts(parse), out, fallback="respond", response="utter_default")
        else:
            out.append(Respond("utter_default"))
        return True

    def _continue_flow(self, state: DialogueState, parse: Parse, confident: bool, out: list[Command]) -> bool:
        """A flow is collecting slots: fill them, digress and come back, or clarify; True to run the flow."""
        frame = state.stack[-1]
        flow = self.domain.flows[frame.flow]
        asking = flow.slot(frame.asking) if frame.asking else None
        other_flow = self.domain.flow_for(parse.intent)
        digression = (
            confident
            and parse.intent != flow.trigger
            and (other_flow is not None or parse.intent in self.domain.answers)
            and not (asking and parse.intent in asking.from_intent)
        )
        if digression and other_flow is not None:
            state.failures = 0
            self._push(state, other_flow, parse, out)
            return True
        if digression:
            out.append(Respond(self.domain.answers[parse.intent]))
        fills = self._entity_fills(flow, parse)
        if asking and asking.name not in fills:
            if confident and parse.intent in asking.from_intent:
                fills[asking.name] = asking.from_intent[parse.intent]
            elif asking.from_text and not fills and not digression and parse.text.strip() and not parse.text.startswith("/"):
                # The whole message answers the question, unless it carried values for other slots
                # ("sorry, I meant E-5090" is a correction, not an address).
                fills[asking.name] = parse.text.strip()
        if fills:
            state.failures = 0
            self._fill(frame, fills, out)
        elif not confident and not digression:
            self._not_understood(state, parse, out)
            return False
        return True

    def _not_understood(self, state: DialogueState, parse: Parse, out: list[Command]) -> None:
        """Low confidence: offer the two likeliest intents as buttons; after repeated failures, hand off."""
        state.failures += 1
        if state.failures >= self.policy.max_failures:
            reason = f"{state.failures} messages in a row not understood"
            if self.can_generate and self.policy.generator_fallback:
                self._generate(state, _parse_facts(parse), out, fallback="handoff", reason=reason)
            else:
                self._hand_off(state, "utter_handoff", reason, out)
            return
        handled = [name for name, _ in parse.ranking if self.domain.offerable(name)]
        buttons = tuple(Button(self.domain.title(name), f"/{name}") for name in handled[:2])
        out.append(Respond("utter_clarify", buttons=buttons) if buttons else Respond("utter_default"))

    def _push(self, state: DialogueState, flow: Flow, parse: Parse, out: list[Command]) -> None:
        frame = Frame(flow.name)
        state.stack.append(frame)
        del state.stack[:-MAX_STACK]
        self._fill(frame, self._entity_fills(flow, parse), out)

    def _entity_fills(self, flow: Flow, parse: Parse) -> dict[str, Any]:
        values = parse.entity_values()
        return {slot.name: values[slot.entity] for slot in flow.slots if slot.entity in values}

    def _corrects(self, frame: Frame, parse: Parse) -> bool:
        fills = self._entity_fills(self.domain.flows[frame.flow], parse)
        return any(frame.slots.get(name) != value for name, value in fills.items())

    def _fill(self, frame: Frame, fills: dict[str, Any], out: list[Command]) -> None:
        """Check each value; valid ones are set (or queued for a validator action), invalid ones explained."""
        flow = self.domain.flows[frame.flow]
        for name, raw in fills.items():
            spec = flow.slot(name)
            assert spec is not None
            value = validate_value(spec, raw)
            if value is None:
                out.append(Respond(spec.invalid, {**self._context(frame), "slot": name, "value": raw}))
            elif spec.validator:
                frame.slots.pop(name, None)
                frame.validating.append([name, value])
            else:
                self._set(frame, name, value, out)

    def _set(self, frame: Frame, name: str, value: Any, out: list[Command]) -> None:
        frame.slots[name] = value
        out.append(SlotSet(name, value))

    def _advance(self, state: DialogueState, out: list[Command]) -> None:
        """Run the top flow until it needs the user (a slot prompt) or an action result, or ends."""
        while state.stack:
            frame = state.stack[-1]
            flow = self.domain.flows[frame.flow]
            if frame.validating:
                name, value = frame.validating.pop(0)
                spec = flow.slot(name)
                assert spec is not None and spec.validator
                frame.waiting = {"slot": name, "value": value, "save_as": None}
                out.append(RunAction(spec.validator, flow.name, dict(frame.slots), name, value))
                return
            if frame.pc == 0:
                missing = next((s for s in flow.slots if frame.slots.get(s.name) is None), None)
                frame.asking = missing.name if missing else None
                if missing:
                    out.append(Respond(missing.prompt, self._context(frame)))
                    return
            if frame.pc >= len(flow.program):
                state.last_flow = state.stack.pop()
                continue
            if self._execute(state, frame, flow, out):
                return

    def _execute(self, state: DialogueState, frame: Frame, flow: Flow, out: list[Command]) -> bool:
        """Run one instruction; True when the engine must stop and wait."""
        instruction = flow.program[frame.pc]
        frame.pc += 1
        op, arg = instruction.op, instruction.arg
        if op == "respond":
            out.append(Respond(arg, self._context(frame)))
        elif op == "action":
            frame.waiting = {"slot": None, "value": None, "save_as": instruction.save_as}
            out.append(RunAction(arg, flow.name, dict(frame.slots)))
            return True
        elif op == "set":
            for name, value in arg.items():
                self._set(frame, name, value, out)
        elif op == "jump_unless":
            if not self._holds(arg[0], frame):
                frame.pc = arg[1]
        elif op == "jump":
            frame.pc = arg
        elif op == "handoff":
            self._hand_off(state, arg, f"flow '{flow.name}'", out, self._context(frame))
            return True
        elif op == "generate":
            if not self.can_generate:  # no generator loaded: the step's fallback is the reply
                if arg:
                    out.append(Respond(arg, self._context(frame)))
                return False
            facts = [f"flow {flow.name}", *_slot_facts(frame)]
            self._generate(state, facts, out, fallback="respond", response=arg, in_flow=True)
            return True
        elif op == "end":
            frame.pc = len(flow.program)
        return False

    def _hand_off(self, state: DialogueState, response: str, reason: str, out: list[Command], context: dict | None = None) -> None:
        out.append(Respond(response, context or {}))
        out.append(HandOff(reason))
        state.handed_off = True
        state.failures = 0
        state.stack.clear()

    def _holds(self, condition: str, frame: Frame) -> bool:
        try:
            if condition not in self.conditions:
                self.conditions[condition] = self.expressions.compile_expression(condition, undefined_to_none=False)
            return bool(self.conditions[condition](**self._context(frame)))
        except jinja2.TemplateError as error:
            log.warning("flow %s: condition %r failed (%s); taking it as false", frame.flow, condition, error)
            return False

    def _context(self, frame: Frame) -> dict[str, Any]:
        return {**frame.slots, **frame.results, "slots": dict(frame.slots), "flow": frame.flow}


def _parse_facts(parse: Parse) -> list[str]:
    values = parse.entity_values()
    return [f"intent {parse.intent}", *([" ; ".join(f"{k} {v}" for k, v in values.items())] if values else [])]


def _slot_facts(frame: Frame) -> list[str]:
    """Slots and scalar action results as ``name value`` facts for the generator's context."""
    scalars = {**frame.slots, **{f"{r}.{k}": v for r, data in frame.results.items() if isinstance(data, dict) for k, v in data.items()}}
    pairs = [f"{k} {v}" for k, v in scalars.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)]
    return [" ; ".join(pairs)] if pairs else []


def validate_value(spec: SlotSpec, raw: Any) -> Any:
    """``raw`` converted to the slot's type and checked against its pattern/choices; None when invalid."""
    text = str(raw).strip()
    value: Any = text
    try:
        if spec.type == "int":
            value = int(text)
        elif spec.type == "float":
            value = float(text)
        elif spec.type == "bool":
            value = raw if isinstance(raw, bool) else True if text.lower() in TRUE_WORDS else False if text.lower() in FALSE_WORDS else None
        elif spec.type == "email" and not EMAIL.fullmatch(text):
            value = None
    except ValueError:
        value = None
    if value is None or (spec.pattern and not re.fullmatch(spec.pattern, text)):
        return None
    if spec.choices:
        return next((choice for choice in spec.choices if choice.lower() == text.lower()), None)
    return value
