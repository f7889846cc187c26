"""Cross-checks of a loaded domain: every reference resolves, every template parses, no example is ambiguous.

Each check returns problems naming the file and line an author has to edit.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import jinja2

from bot.domain import Domain
from bot.flow_spec import Flow, Problem
from bot.flows import Policy
from bot.responses import CONTEXT_NAMES, template_environment, template_variables


def cross_check(domain: Domain, policy: Policy) -> list[Problem]:
    """All cross-reference problems of ``domain``."""
    return [
        *_entity_problems(domain),
        *_duplicate_examples(domain),
        *(p for flow in domain.flows.values() for p in _flow_problems(domain, flow)),
        *_answer_problems(domain),
        *_template_problems(domain),
        *_coverage_warnings(domain, policy),
    ]


def _origin(origin: str) -> tuple[Path, int | None]:
    path, _, line = origin.rpartition(":")
    return (Path(path), int(line)) if line.isdigit() else (Path(origin), None)


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _entity_problems(domain: Domain) -> list[Problem]:
    used = {span.label for example in domain.examples for span in example.spans}
    known = sorted(domain.entities) if domain.entities else sorted(used)
    problems = []
    for example in domain.examples:
        for span in example.spans:
            if span.label not in known:
                problems.append(Problem(*_origin(example.origin), f"unknown entity '{span.label}'{_suggest(span.label, known)}"))
    for entry in domain.lexicon:
        if entry.kind in ("regex", "lookup") and entry.name not in known:
            problems.append(Problem(entry.path, entry.line, f"{entry.kind} for unknown entity '{entry.name}'{_suggest(entry.name, known)}"))
        if entry.kind == "regex":
            for line, pattern in entry.items:
                try:
                    re.compile(pattern)
                except re.error as error:
                    problems.append(Problem(entry.path, line, f"invalid regex for '{entry.name}': {error}"))
    return problems


def _duplicate_examples(domain: Domain) -> list[Problem]:
    seen: dict[str, tuple[str, str]] = {}
    problems = []
    for example in domain.examples:
        key = " ".join(example.text.lower().split())
        if key in seen and seen[key][0] != example.intent:
            first_intent, first_origin = seen[key]
            problems.append(
                Problem(
                    *_origin(example.origin),
                    f"example '{example.text}' of intent '{example.intent}' is also an example of '{first_intent}' ({first_origin})",
                )
            )
        seen.setdefault(key, (example.intent, example.origin))
    return problems


def _fillable_entities(domain: Domain) -> set[str]:
    annotated = {span.label for example in domain.examples for span in example.spans}
    return annotated | {entry.name for entry in domain.lexicon if entry.kind in ("regex", "lookup")}


def _flow_problems(domain: Domain, flow: Flow) -> list[Problem]:
    problems: list[Problem] = []

    def problem(line: int | None, message: str, error: bool = True) -> None:
        problems.append(Problem(flow.path, line, f"flow '{flow.name}': {message}", error))

    intents = domain.intents
    if flow.trigger is not None and flow.trigger not in intents:
        problem(flow.line, f"trigger intent '{flow.trigger}' has no examples{_suggest(flow.trigger, intents)}")
    others = [f.name for f in domain.flows.values() if f.trigger == flow.trigger and f.name < flow.name]
    if flow.trigger is not None and others:
        problem(flow.line, f"intent '{flow.trigger}' already triggers flow '{others[0]}'")
    fillable = _fillable_entities(domain)
    for slot in flow.slots:
        if slot.entity is not None and slot.entity not in fillable:
            problem(slot.line, f"slot '{slot.name}' is filled by entity '{slot.entity}', which no example, regex or lookup produces")
        if slot.entity is None and not slot.from_text and not slot.from_intent:
            problem(slot.line, f"slot '{slot.name}' has no way to be filled: give it an entity, from_text or from_intent")
        for response in (slot.prompt, slot.invalid):
            if response not in domain.responses:
                problem(slot.line, f"slot '{slot.name}' uses undefined response '{response}'{_suggest(response, list(domain.responses))}")
        if slot.validator and not domain.has_action(slot.validator):
            problem(slot.line, f"slot '{slot.name}' is validated by unknown action '{slot.validator}'")
        for intent in slot.from_intent:
            if intent not in intents:
                problem(slot.line, f"slot '{slot.name}': from_intent names unknown intent '{intent}'")
        if slot.pattern:
            try:
                re.compile(slot.pattern)
            except re.error as error:
                problem(slot.line, f"slot '{slot.name}': invalid pattern: {error}")
    environment = template_environment()
    for instruction in flow.program:
        if instruction.op in ("respond", "handoff", "generate") and instruction.arg and instruction.arg not in domain.responses:
            problem(instruction.line, f"undefined response '{instruction.arg}'{_suggest(instruction.arg, list(domain.responses))}")
        elif instruction.op == "action" and not domain.has_action(instruction.arg):
            known = [*domain.python_actions, *domain.http_actions]
            problem(instruction.line, f"unknown action '{instruction.arg}'{_suggest(str(instruction.arg), known)}")
        elif instruction.op == "jump_unless":
            try:
                environment.compile_expression(instruction.arg[0])
            except jinja2.TemplateSyntaxError as error:
                problem(instruction.line, f"condition '{instruction.arg[0]}' does not parse: {error.message}")
    return problems


def _answer_problems(domain: Domain) -> list[Problem]:
    where = domain.dialogue_files[0] if domain.dialogue_files else domain.root / "dialogues"
    problems = []
    for intent, response in domain.answers.items():
        if intent not in domain.intents:
            problems.append(Problem(where, None, f"answers: unknown intent '{intent}'{_suggest(intent, domain.intents)}"))
        if response not in domain.responses:
            problems.append(Problem(where, None, f"answers: intent '{intent}' uses undefined response '{response}'"))
    return problems


def _template_problems(domain: Domain) -> list[Problem]:
    """Syntax errors, and variables no flow ever provides (typos like ``{{ oder_id }}``)."""
    environment = template_environment()
    provided = set(CONTEXT_NAMES) | set(environment.globals)
    for flow in domain.flows.values():
        provided |= {slot.name for slot in flow.slots} | {slot.validator for slot in flow.slots if slot.validator}
        provided |= {i.save_as for i in flow.program if i.save_as} | {k for i in flow.program if i.op == "set" for k in i.arg}
    problems = []
    for response in domain.responses.values():
        for variant in response.variants:
            for text in (variant.text, *(b.title for b in variant.buttons), *(b.payload for b in variant.buttons)):
                try:
                    variables = template_variables(environment, text)
                except jinja2.TemplateSyntaxError as error:
                    line = response.line + (error.lineno or 1) - 1
                    problems.append(Problem(response.path, line, f"response '{response.name}': template syntax error: {error.message}"))
                    continue
                for name in sorted(variables - provided):
                    problems.append(
                        Problem(response.path, response.line, f"response '{response.name}' uses undefined variable '{name}'{_suggest(name, sorted(provided))}")
                    )
    return problems


def _coverage_warnings(domain: Domain, policy: Policy) -> list[Problem]:
    """Intents nothing reacts to; the cancel and inform intents are the dialogue manager's own."""
    where = domain.dialogue_files[0] if domain.dialogue_files else domain.root / "dialogues"
    handled = set(domain.answers) | {f.trigger for f in domain.flows.values()} | {policy.cancel_intent, policy.inform_intent}
    handled |= {intent for f in domain.flows.values() for s in f.slots for intent in s.from_intent}
    return [
        Problem(where, None, f"intent '{intent}' starts no flow and has no answer: the bot will give its default reply", error=False)
        for intent in domain.intents
        if intent not in handled
    ]
