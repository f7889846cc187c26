"""YAML loading that remembers line numbers, so every domain error can say ``file:line``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from slm.errors import DataError
from slm.intents_yaml import compose_file


class YamlMap(dict):
    """A mapping that knows its own line and the line of each value."""

    def __init__(self, *args: Any, line: int | None = None) -> None:
        super().__init__(*args)
        self.line = line
        self.value_lines: dict[str, int] = {}

    def line_of(self, key: str) -> int | None:
        """Line of ``key``'s value (the mapping's own line when the key is absent)."""
        return self.value_lines.get(key, self.line)


class YamlList(list):
    """A sequence that knows its own line and the line of each item."""

    def __init__(self, items: Any = (), line: int | None = None) -> None:
        super().__init__(items)
        self.line = line
        self.item_lines: list[int | None] = [line] * len(self)


def load_yaml(path: Path) -> Any:
    """Parse ``path`` into plain values wrapped in `YamlMap`/`YamlList`.

    Raises:
        DataError: invalid YAML or a non-string mapping key, with the line.
    """
    root = compose_file(path)
    return None if root is None else _convert(root, path, yaml.SafeLoader(""))


def _convert(node: yaml.Node, path: Path, loader: yaml.SafeLoader) -> Any:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        mapping = YamlMap(line=line)
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            if not isinstance(key, str):
                raise DataError(path, key_node.start_mark.line + 1, f"mapping keys must be text, got {key!r}")
            if key in mapping:
                raise DataError(path, key_node.start_mark.line + 1, f"duplicate key '{key}'")
            mapping[key] = _convert(value_node, path, loader)
            mapping.value_lines[key] = value_node.start_mark.line + 1
        return mapping
    if isinstance(node, yaml.SequenceNode):
        items = YamlList((_convert(item, path, loader) for item in node.value), line)
        items.item_lines = [item.start_mark.line + 1 for item in node.value]
        return items
    return loader.construct_object(node)
