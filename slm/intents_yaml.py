"""Read a bot project's ``intents/*.yml``: Rasa-style NLU YAML with inline entity markup.

    nlu:
      - intent: order_status
        examples: |
          - where is order [A-1042](order_id)
          - has [B-2001](order_id) shipped yet?

Other entry kinds (``synonym``, ``regex``, ``lookup``) feed the bot's entity lexicon (see
`load_lexicon_entries`); anything else is an error that names the file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from slm.errors import DataError
from slm.examples import Example, Span

ANNOTATION = re.compile(r"\[(?P<value>[^\]\[]+)\]\((?P<entity>[A-Za-z_][\w.-]*)\)")
LEXICON_KINDS = ("synonym", "regex", "lookup")


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
    examples = [example for path in intent_files(folder) for example in _load_file(path)[0]]
    if not examples:
        raise DataError(folder, None, "no intent examples found")
    return examples


def load_lexicon_entries(folder: Path) -> list[LexiconEntry]:
    """The ``synonym``/``regex``/``lookup`` entries of every file in ``folder``, in file order."""
    return [entry for path in intent_files(folder) for entry in _load_file(path)[1]]


def intent_files(folder: Path) -> list[Path]:
    """The YAML files of an intents folder, sorted so that loading order is stable."""
    return sorted([*Path(folder).glob("*.yml"), *Path(folder).glob("*.yaml")])


@dataclass(frozen=True)
class LexiconEntry:
    """A non-intent entry: ``kind`` is synonym, regex or lookup; ``items`` are (line, text)."""

    kind: str
    name: str
    items: tuple[tuple[int, str], ...]
    path: Path
    line: int


def compose_file(path: Path) -> yaml.Node | None:
    """The YAML node tree of ``path`` (line numbers kept); None for an empty file.

    Raises:
        DataError: invalid YAML (with its line) or text that is not UTF-8.
    """
    try:
        return yaml.compose(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as error:
        line = error.problem_mark.line + 1 if error.problem_mark else None
        raise DataError(path, line, f"invalid YAML: {error.problem}") from None
    except UnicodeDecodeError as error:
        raise DataError(path, None, f"not UTF-8 text ({error.reason})") from None


def _load_file(path: Path) -> tuple[list[Example], list[LexiconEntry]]:
    root = compose_file(path)
    if root is None:
        return [], []
    entries = _mapping(root, path).get("nlu")
    if entries is None:
        raise DataError(path, root.start_mark.line + 1, "expected a top-level 'nlu:' list")
    if not isinstance(entries, yaml.SequenceNode):
        raise DataError(path, entries.start_mark.line + 1, "'nlu' must be a list")
    examples: list[Example] = []
    lexicon: list[LexiconEntry] = []
    for entry in entries.value:
        fields = _mapping(entry, path)
        line = entry.start_mark.line + 1
        kind = next((k for k in ("intent", *LEXICON_KINDS) if k in fields), None)
        if kind is None:
            raise DataError(path, line, "entry needs one of: intent, synonym, regex, lookup")
        name = fields[kind].value
        if not isinstance(name, str) or not name.strip():
            raise DataError(path, line, f"{kind} name must be a non-empty string")
        items = _block_items(fields, path, line, f"{kind} '{name}'")
        if kind == "intent":
            examples.extend(_intent_examples(name, items, path))
        else:
            lexicon.append(LexiconEntry(kind, name, tuple(items), path, line))
    return examples, lexicon


def _mapping(node: yaml.Node, path: Path) -> dict[str, yaml.Node]:
    if not isinstance(node, yaml.MappingNode):
        raise DataError(path, node.start_mark.line + 1, "expected a mapping")
    return {key.value: value for key, value in node.value}


def _block_items(fields: dict[str, yaml.Node], path: Path, line: int, what: str) -> list[tuple[int, str]]:
    """The ``- item`` lines of an entry's ``examples: |`` block, each with its line number."""
    block = fields.get("examples")
    if not isinstance(block, yaml.ScalarNode):
        raise DataError(path, line, f"{what} needs an 'examples: |' block of '- ' lines")
    # A literal block's text starts on the line after its '|' indicator.
    first_line = block.start_mark.line + (2 if block.style in ("|", ">") else 1)
    items = []
    for offset, raw in enumerate(block.value.splitlines()):
        stripped = raw.strip()
        if not stripped:
            continue
        if not stripped.startswith("- "):
            raise DataError(path, first_line + offset, "each example must start with '- '")
        items.append((first_line + offset, stripped[2:].strip()))
    return items


def _intent_examples(intent: str, items: list[tuple[int, str]], path: Path) -> list[Example]:
    examples = []
    for line, item in items:
        text, spans = parse_annotated(item)
        if "[" in text and "](" in text:
            raise DataError(path, line, "unbalanced entity markup '[value](entity)'")
        if not text.strip():
            raise DataError(path, line, "empty example")
        examples.append(Example(text, intent, spans, origin=f"{path}:{line}"))
    return examples
