"""A flow as the author writes it in ``dialogues/*.yml``, compiled to a flat program.

    flows:
      order_status:
        trigger: order_status
        slots:
          order_id:
            entity: order_id
            prompt: utter_ask_order_id
            validate: {pattern: "[A-Z]-\\d{4}", action: validate_order_id}
        steps:
          - action: lookup_order
            as: order
          - if: order.status == "shipped"
            then:
              - respond: utter_order_shipped
            else:
              - respond: utter_order_in_progress
          - end

Steps are compiled to instructions (respond, action, set, jump_unless, jump, handoff, end) so
a conversation's position in a flow is one integer that can be stored between turns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.yaml_source import YamlList, YamlMap

SLOT_TYPES = ("text", "int", "float", "bool", "email")


@dataclass(frozen=True)
class Problem:
    """Something wrong in a bot project; ``error`` problems stop training and serving."""

    path: Path
    line: int | None
    message: str
    error: bool = True

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else str(self.path)
        return f"{where}: {'' if self.error else 'warning: '}{self.message}"


@dataclass(frozen=True)
class SlotSpec:
    """A value a flow needs before its steps run, and how to get and check it."""

    name: str
    prompt: str
    entity: str | None = None
    type: str = "text"
    pattern: str | None = None
    choices: tuple[str, ...] = ()
    validator: str | None = None
    invalid: str = "utter_invalid_slot"
    from_text: bool = False
    from_intent: dict[str, Any] = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True)
class Instruction:
    """One compiled step; ``arg`` depends on ``op`` (response name, action, expression, target...)."""

    op: str
    arg: Any = None
    save_as: str | None = None
    line: int = 0


@dataclass(frozen=True)
class Flow:
    """A compiled flow: trigger intent, slots to collect (in order), then its program."""

    name: str
    trigger: str | None
    slots: tuple[SlotSpec, ...]
    program: tuple[Instruction, ...]
    path: Path
    line: int
    title: str = ""

    def slot(self, name: str) -> SlotSpec | None:
        """The slot called ``name``, if this flow has one."""
        return next((s for s in self.slots if s.name == name), None)


class FlowCompiler:
    """Turns one ``flows:`` entry into a `Flow`, collecting problems instead of stopping at the first."""

    def __init__(self, path: Path, problems: list[Problem]) -> None:
        self.path, self.problems = path, problems

    def compile(self, name: str, spec: Any, line: int) -> Flow | None:
        """The compiled flow, or None when its definition is unusable."""
        if not isinstance(spec, YamlMap):
            return self._problem(line, f"flow '{name}' must be a mapping with trigger, slots and steps")
        self._unknown_keys(spec, ("trigger", "slots", "steps", "description", "title"), f"flow '{name}'")
        slots_spec = spec.get("slots") or YamlMap()
        if not isinstance(slots_spec, YamlMap):
            return self._problem(spec.line_of("slots"), f"flow '{name}': slots must be a mapping of slot name -> settings")
        slots = tuple(s for key, value in slots_spec.items() if (s := self._slot(key, value, slots_spec.line_of(key))))
        program: list[Instruction] = []
        steps = spec.get("steps", YamlList())
        self._steps(steps, spec.line_of("steps"), program)
        trigger = spec.get("trigger")
        if trigger is not None and not isinstance(trigger, str):
            self._problem(spec.line_of("trigger"), f"flow '{name}': trigger must be an intent name")
            trigger = None
        title = str(spec.get("title", "")) or name.replace("_", " ")
        return Flow(name, trigger, slots, tuple(program), self.path, line, title)

    def _slot(self, name: str, spec: Any, line: int) -> SlotSpec | None:
        if not isinstance(spec, YamlMap) or not isinstance(spec.get("prompt"), str):
            return self._problem(line, f"slot '{name}' needs a mapping with at least 'prompt: <response name>'")
        self._unknown_keys(spec, ("entity", "prompt", "type", "validate", "invalid", "from_text", "from_intent"), f"slot '{name}'")
        validate = spec.get("validate") or YamlMap()
        if not isinstance(validate, YamlMap):
            return self._problem(spec.line_of("validate"), f"slot '{name}': validate must be a mapping (type, pattern, choices, action)")
        self._unknown_keys(validate, ("type", "pattern", "choices", "action"), f"slot '{name}' validate")
        slot_type = validate.get("type", spec.get("type", "text"))
        if slot_type not in SLOT_TYPES:
            self._problem(spec.line, f"slot '{name}': unknown type '{slot_type}' (one of: {', '.join(SLOT_TYPES)})")
            slot_type = "text"
        from_intent = spec.get("from_intent") or {}
        if not isinstance(from_intent, dict):
            self._problem(spec.line_of("from_intent"), f"slot '{name}': from_intent must map intent -> value")
            from_intent = {}
        choices = validate.get("choices") or []
        if not isinstance(choices, list):
            self._problem(validate.line_of("choices"), f"slot '{name}': choices must be a list")
            choices = ()
        return SlotSpec(
            name=name,
            prompt=spec["prompt"],
            entity=spec.get("entity"),
            type=slot_type,
            pattern=validate.get("pattern"),
            choices=tuple(str(c) for c in choices),
            validator=validate.get("action"),
            invalid=spec.get("invalid", "utter_invalid_slot"),
            from_text=bool(spec.get("from_text", False)),
            from_intent=dict(from_intent),
            line=line,
        )

    def _steps(self, steps: Any, line: int, program: list[Instruction]) -> None:
        if not isinstance(steps, YamlList):
            self._problem(line, "steps must be a list")
            return
        for step, step_line in zip(steps, steps.item_lines):
            self._step(step, step_line, program)

    def _step(self, step: Any, line: int, program: list[Instruction]) -> None:
        if step in ("end", "generate"):
            program.append(Instruction(step, line=line))
            return
        if not isinstance(step, YamlMap) or not step:
            self._problem(line, "a step is a mapping: respond, action, set, if, handoff, or the word 'end'")
            return
        kind = next(iter(step))
        if kind == "respond":
            program.append(Instruction("respond", step["respond"], line=line))
        elif kind == "action":
            self._unknown_keys(step, ("action", "as"), "action step")
            program.append(Instruction("action", step["action"], save_as=step.get("as", step["action"]), line=line))
        elif kind == "set":
            if not isinstance(step["set"], dict):
                self._problem(line, "set needs a mapping of slot -> value")
            else:
                program.append(Instruction("set", dict(step["set"]), line=line))
        elif kind == "if":
            self._if(step, line, program)
        elif kind == "handoff":
            response = step["handoff"] if isinstance(step["handoff"], str) else "utter_handoff"
            program.append(Instruction("handoff", response, line=line))
        elif kind == "end":
            program.append(Instruction("end", line=line))
        elif kind == "generate":
            fallback = step["generate"] if isinstance(step["generate"], str) else None
            program.append(Instruction("generate", fallback, line=line))
        else:
            self._problem(line, f"unknown step '{kind}' (respond, action, set, if, generate, handoff, end)")

    def _if(self, step: YamlMap, line: int, program: list[Instruction]) -> None:
        """``if/then/else`` -> jump_unless(cond, else) ; then... ; jump(end) ; else... ."""
        self._unknown_keys(step, ("if", "then", "else"), "if step")
        if not isinstance(step["if"], str) or "then" not in step:
            self._problem(line, "if needs a condition (a jinja2 expression) and a 'then' list of steps")
            return
        condition, branch = step["if"], len(program)
        program.append(Instruction("jump_unless", (condition, None), line=line))
        self._steps(step["then"], step.line_of("then"), program)
        if "else" in step:
            skip_else = len(program)
            program.append(Instruction("jump", None, line=line))
            program[branch] = Instruction("jump_unless", (condition, len(program)), line=line)
            self._steps(step["else"], step.line_of("else"), program)
            program[skip_else] = Instruction("jump", len(program), line=line)
        else:
            program[branch] = Instruction("jump_unless", (condition, len(program)), line=line)

    def _unknown_keys(self, spec: YamlMap, known: tuple[str, ...], what: str) -> None:
        for key in spec:
            if key not in known:
                self._problem(spec.line_of(key), f"{what}: unknown key '{key}' (known: {', '.join(known)})")

    def _problem(self, line: int | None, message: str) -> None:
        self.problems.append(Problem(self.path, line, message))
        return None
