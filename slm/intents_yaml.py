"""Read a bot project's ``intents/*.yml``: Rasa-style NLU YAML with inline entity markup.

    nlu:
      - intent: order_status
        examples: |
          - where is order [A-1042](order_id)
          - has [B-2001](order_id) shipped yet?

Other entry kinds (``synonym``, ``regex``, ``lookup``) belong to the bot's domain and are
skipped here; anything else is an error that names the file and line.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from slm.errors import DataError
from slm.examples import Example, Span

ANNOTATION = re.compile(r"\[(?P<value>[^\]\[]+)\]\((?P<entity>[A-Za-z_][\w.-]*)\)")
DOMAIN_KINDS = ("synonym", "regex", "lookup")


def parse_annotated(line: str) -> tuple[str, tuple[Span, ...]]:
    """Strip ``[value](entity)`` markup, returning the plain text and its entity spans."""
    text_parts, spans, cursor, length = [], [], 0, 0
    for match in ANNOTATION.finditer(line):
        before = line[cursor : match.start()]
        text_parts.append(before)
        length += len(before)
        value = match.group("value")
        spans.append(Span(length, length + len(value), match.group("entity")))
        text_parts.append(value)
        length += len(value)
        cursor = match.end()
    text_parts.append(line[cursor:])
    return "".join(text_parts), tuple(spans)


def load_intents_folder(folder: Path) -> list[Example]:
    """Load every ``*.yml``/``*.yaml`` file in ``folder`` (sorted, so order is stable)."""
    files = sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")])
    examples = [example for path in files for example in _load_file(path)]
    if not examples:
        raise DataError(folder, None, "no intent examples found")
    return examples


def _load_file(path: Path) -> list[Example]:
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as error:
        line = error.problem_mark.line + 1 if error.problem_mark else None
        raise DataError(path, line, f"invalid YAML: {error.problem}") from None
    if root is None:
        return []
    entries = _mapping(root, path).get("nlu")
    if entries is None:
        raise DataError(path, root.start_mark.line + 1, "expected a top-level 'nlu:' list")
    if not isinstance(entries, yaml.SequenceNode):
        raise DataError(path, entries.start_mark.line + 1, "'nlu' must be a list")
    examples: list[Example] = []
    for entry in entries.value:
        fields = _mapping(entry, path)
        line = entry.start_mark.line + 1
        if "intent" in fields:
            examples.extend(_intent_examples(fields, path, line))
        elif not any(kind in fields for kind in DOMAIN_KINDS):
            raise DataError(path, line, "entry needs one of: intent, synonym, regex, lookup")
    return examples


def _mapping(node: yaml.Node, path: Path) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        raise DataError(path, node.start_mark.line + 1, "expected a mapping")
    return {key.value: value for key, value in node.value}


def _intent_examples(fields: dict[str, yaml.Node], path: Path, line: int) -> list[Example]:
    intent = fields["intent"].value
    if not isinstance(intent, str) or not intent.strip():
        raise DataError(path, line, "intent name must be a non-empty string")
    block = fields.get("examples")
    if not isinstance(block, yaml.ScalarNode):
        raise DataError(path, line, f"intent '{intent}' needs an 'examples: |' block of '- ' lines")
    # A literal block's text starts on the line after its '|' indicator.
    first_line = block.start_mark.line + (2 if block.style in ("|", ">") else 1)
    examples = []
    for offset, raw in enumerate(block.value.splitlines()):
        stripped = raw.strip()
        if not stripped:
            continue
        if not stripped.startswith("- "):
            raise DataError(path, first_line + offset, "each example must start with '- '")
        text, spans = parse_annotated(stripped[2:].strip())
        if "[" in text and "](" in text:
            raise DataError(path, first_line + offset, "unbalanced entity markup '[value](entity)'")
        if not text.strip():
            raise DataError(path, first_line + offset, "empty example")
        examples.append(Example(text, intent, spans, origin=f"{path}:{first_line + offset}"))
    return examples
