"""A bot project's domain: intents and their lexicon, flows, responses and actions, loaded once.

Everything wrong is collected as a `Problem` naming ``file:line``, so `slmbot check` can report
all of it at once and the server refuses to start on a broken project.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from bot.actions import ActionFunction, load_actions_module
from bot.flow_spec import Flow, FlowCompiler, Problem
from bot.responses import BUILTIN_RESPONSES, Response, ResponseVariant
from bot.types import Button
from bot.yaml_source import YamlMap, load_yaml
from slm.errors import DataError
from slm.examples import Example
from slm.intents_yaml import LexiconEntry, load_intents_folder, load_lexicon_entries

if TYPE_CHECKING:
    from bot.flows import Policy  # bot.flows imports this module

DIALOGUE_KEYS = ("entities", "intent_titles", "answers", "responses", "actions", "flows")


class DomainError(ValueError):
    """The project has errors; ``problems`` lists every one of them."""

    def __init__(self, problems: list[Problem]) -> None:
        errors = [p for p in problems if p.error]
        super().__init__(f"{len(errors)} problem(s) in the bot project:\n" + "\n".join(str(p) for p in errors))
        self.problems = problems


@dataclass(frozen=True)
class HttpAction:
    """A custom action served elsewhere: slmbot POSTs JSON to ``url`` and expects a JSON object back."""

    name: str
    url: str
    timeout: float = 5.0


@dataclass
class Domain:
    """Everything the dialogue manager needs to know about one bot."""

    root: Path
    examples: list[Example] = field(default_factory=list)
    lexicon: list[LexiconEntry] = field(default_factory=list)
    entities: set[str] = field(default_factory=set)
    flows: dict[str, Flow] = field(default_factory=dict)
    responses: dict[str, Response] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict)
    intent_titles: dict[str, str] = field(default_factory=dict)
    http_actions: dict[str, HttpAction] = field(default_factory=dict)
    python_actions: dict[str, ActionFunction] = field(default_factory=dict)
    dialogue_files: list[Path] = field(default_factory=list)

    @property
    def intents(self) -> list[str]:
        """Intent names in the order they first appear in the examples."""
        return list(dict.fromkeys(e.intent for e in self.examples))

    def flow_for(self, intent: str) -> Flow | None:
        """The flow ``intent`` starts, if any."""
        return next((f for f in self.flows.values() if f.trigger == intent), None)

    def title(self, intent: str) -> str:
        """A human label for an intent, e.g. on a clarification button."""
        flow = self.flow_for(intent)
        return self.intent_titles.get(intent) or (flow.title if flow else intent.replace("_", " ").capitalize())

    def offerable(self, intent: str) -> bool:
        """Whether to offer ``intent`` as a clarification button: it starts a flow or the author titled it."""
        return self.flow_for(intent) is not None or intent in self.intent_titles

    def has_action(self, name: str) -> bool:
        """Whether ``name`` is a Python action or an HTTP webhook action."""
        return name in self.python_actions or name in self.http_actions


def load_domain(root: Path, intents_dir: Path | None = None, policy: Policy | None = None) -> tuple[Domain, list[Problem]]:
    """Read ``intents/``, ``dialogues/*.yml`` and ``dialogues/actions.py`` under ``root``.

    Returns the domain and every problem found (see `bot.checks` for the cross-checks, which
    need the dialogue ``policy`` to know the cancel and inform intents).
    """
    from bot.checks import cross_check
    from bot.flows import Policy

    root = Path(root).resolve()
    domain = Domain(root)
    problems: list[Problem] = []
    intents = intents_dir or root / "intents"
    for loader, target in ((load_intents_folder, "examples"), (load_lexicon_entries, "lexicon")):
        _collect(lambda: setattr(domain, target, loader(intents)), problems)
    dialogues = root / "dialogues"
    domain.dialogue_files = sorted([*dialogues.glob("*.yml"), *dialogues.glob("*.yaml")])
    for path in domain.dialogue_files:
        _collect(lambda: _read_dialogue_file(path, domain, problems), problems)
    actions_file = dialogues / "actions.py"
    if actions_file.is_file():
        _collect(lambda: domain.python_actions.update(load_actions_module(actions_file)), problems)
    for name, text in BUILTIN_RESPONSES.items():
        domain.responses.setdefault(name, Response(name, (ResponseVariant(text),), Path("<built-in>"), 0))
    problems.extend(cross_check(domain, policy or Policy()))
    return domain, problems


def load_valid_domain(root: Path, intents_dir: Path | None = None, policy: Policy | None = None) -> Domain:
    """`load_domain`, raising `DomainError` when any problem is an error."""
    domain, problems = load_domain(root, intents_dir, policy)
    if any(p.error for p in problems):
        raise DomainError(problems)
    return domain


def _collect(load: Callable[[], Any], problems: list[Problem]) -> None:
    try:
        load()
    except DataError as error:
        problems.append(Problem(error.path, error.line, error.reason))


def _read_dialogue_file(path: Path, domain: Domain, problems: list[Problem]) -> None:
    data = load_yaml(path)
    if data is None:
        return
    if not isinstance(data, YamlMap):
        raise DataError(path, 1, f"expected a mapping with any of: {', '.join(DIALOGUE_KEYS)}")
    for key in data:
        if key not in DIALOGUE_KEYS:
            problems.append(Problem(path, data.line_of(key), f"unknown section '{key}' (known: {', '.join(DIALOGUE_KEYS)})"))
    entities = data.get("entities", [])
    if not isinstance(entities, list) or not all(isinstance(e, str) for e in entities):
        problems.append(Problem(path, data.line_of("entities"), "entities must be a list of names"))
    else:
        domain.entities.update(entities)
    for section, target in (("intent_titles", domain.intent_titles), ("answers", domain.answers)):
        values = data.get(section, {})
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            problems.append(Problem(path, data.line_of(section), f"{section} must map intent -> text"))
        else:
            target.update(values)
    _read_responses(path, data.get("responses", YamlMap()), data.line_of("responses"), domain, problems)
    _read_http_actions(path, data.get("actions", YamlMap()), domain, problems)
    flows = data.get("flows", YamlMap())
    if not isinstance(flows, YamlMap):
        problems.append(Problem(path, data.line_of("flows"), "flows must be a mapping of flow name -> definition"))
        return
    compiler = FlowCompiler(path, problems)
    for name, spec in flows.items():
        if name in domain.flows:
            problems.append(Problem(path, flows.line_of(name), f"flow '{name}' is already defined in {domain.flows[name].path}"))
        elif flow := compiler.compile(name, spec, flows.line_of(name)):
            domain.flows[name] = flow


def _read_responses(path: Path, responses: Any, line: int, domain: Domain, problems: list[Problem]) -> None:
    if not isinstance(responses, YamlMap):
        problems.append(Problem(path, line, "responses must map a name to a text or a list of variations"))
        return
    for name, spec in responses.items():
        at = responses.line_of(name)
        variants_spec = spec if isinstance(spec, list) else [spec]
        variants = []
        for variant in variants_spec:
            if isinstance(variant, str):
                variant = {"text": variant}
            if not isinstance(variant, dict) or not isinstance(variant.get("text"), str):
                problems.append(Problem(path, at, f"response '{name}': each variation needs a 'text'"))
                continue
            buttons = variant.get("buttons", [])
            if not isinstance(buttons, list) or not all(isinstance(b, dict) and {"title", "payload"} <= b.keys() for b in buttons):
                problems.append(Problem(path, at, f"response '{name}': buttons must be a list of {{title, payload}}"))
                buttons = []
            variants.append(
                ResponseVariant(variant["text"], tuple(Button(str(b["title"]), str(b["payload"])) for b in buttons), variant.get("image"))
            )
        if name in domain.responses:
            problems.append(Problem(path, at, f"response '{name}' is already defined in {domain.responses[name].path}"))
        elif variants:
            domain.responses[name] = Response(name, tuple(variants), path, at)


def _read_http_actions(path: Path, actions: Any, domain: Domain, problems: list[Problem]) -> None:
    if not isinstance(actions, YamlMap):
        problems.append(Problem(path, None, "actions must map an action name to {url, timeout}"))
        return
    for name, spec in actions.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("url"), str):
            problems.append(Problem(path, actions.line_of(name), f"action '{name}' needs a 'url'"))
            continue
        domain.http_actions[name] = HttpAction(name, spec["url"], float(spec.get("timeout", 5.0)))
