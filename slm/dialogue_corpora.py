"""(context, response) pairs for the generator from CamRest676 and Taskmaster-4.

A context is what a bot knows when it answers: the last turns, plus the facts its actions
returned (a database match, an API response), serialized as plain text with the user's
newest message last, so truncating from the left drops the oldest turns first. Each pair
also carries its candidate entity values (restaurant names, phone numbers, menu items...), to
measure whether a reply states the right ones.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from slm.errors import DataError

CAMREST_SLOTS = ("name", "food", "area", "pricerange", "address", "phone", "postcode")
TM4_SKIPPED_KEYS = {"menu_item_id", "addon_id", "attribute_id", "order_item_id"}


@dataclass(frozen=True)
class DialoguePair:
    """One reply to learn or predict; ``values`` are the entity values it could mention (lower case)."""

    context: str
    response: str
    values: tuple[str, ...] = ()


def render_context(turns: Sequence[tuple[str, str]], facts: Sequence[str] = (), max_turns: int = 4) -> str:
    """``user:``/``bot:`` turns (newest last) with the action facts placed before the newest turn."""
    recent = list(turns[-max_turns:])
    lines = [f"{speaker}: {text.strip()}" for speaker, text in recent[:-1]]
    lines += [f"fact: {fact}" for fact in facts]
    if recent:
        lines.append(f"{recent[-1][0]}: {recent[-1][1].strip()}")
    return "\n".join(lines)


def mentioned(values: Sequence[str], text: str) -> set[str]:
    """The ``values`` that occur in ``text`` as whole words, ignoring case."""
    lowered = text.lower()
    return {v for v in values if v and re.search(rf"(?<!\w){re.escape(v)}(?!\w)", lowered)}


def load_pairs(path: Path, split: str = "train") -> list[DialoguePair]:
    """Pairs from a CamRest676 folder, a Taskmaster-4 folder (``split`` chooses the part) or a
    ``.jsonl`` file of ``{"context", "response", "values"?}`` objects.

    Raises:
        DataError: not a recognised corpus, or a malformed line (file:line: reason).
    """
    path = Path(path)
    if (path / "CamRest676.json").is_file():
        return load_camrest676(path, split)
    if (path / "splits").is_dir() and (path / "data").is_dir():
        return load_taskmaster4(path, split)
    if path.suffix == ".jsonl" and path.is_file():
        return _load_jsonl(path)
    raise DataError(path, None, "not a dialogue corpus: expected a CamRest676 or Taskmaster-4 folder, or a .jsonl file")


def _load_jsonl(path: Path) -> list[DialoguePair]:
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(path, number, f"invalid JSON: {error.msg}") from None
        if not isinstance(record, dict) or not all(isinstance(record.get(k), str) and record[k].strip() for k in ("context", "response")):
            raise DataError(path, number, "each line needs non-empty 'context' and 'response' strings")
        pairs.append(DialoguePair(record["context"], record["response"], tuple(str(v).lower() for v in record.get("values", []))))
    if not pairs:
        raise DataError(path, None, "no pairs")
    return pairs


def load_camrest676(folder: Path, split: str) -> list[DialoguePair]:
    """CamRest676 with Sequicity's 3:1:1 split by file order (``train``, ``dev``, ``test``).

    The database fact is the restaurant the conversation is about: the last one the wizard
    named, else the first match (by name) for the user's constraints so far.
    """
    dialogues = json.loads((folder / "CamRest676.json").read_text(encoding="utf-8"))
    database = json.loads((folder / "CamRestDB.json").read_text(encoding="utf-8"))
    n = len(dialogues)
    bounds = {"train": (0, n * 3 // 5), "dev": (n * 3 // 5, n * 4 // 5), "test": (n * 4 // 5, n)}
    if split not in bounds:
        raise ValueError(f"unknown split '{split}' (train, dev, test)")
    lexicon = sorted({str(r[s]).lower() for r in database for s in CAMREST_SLOTS if r.get(s)}, key=len, reverse=True)
    by_name = {r["name"].lower(): r for r in database}
    pairs = []
    for dialogue in dialogues[slice(*bounds[split])]:
        turns: list[tuple[str, str]] = []
        constraints: dict[str, str] = {}
        topic: dict[str, Any] | None = None
        for turn in dialogue["dial"]:
            for act in turn["usr"]["slu"]:
                if act["act"] == "inform":
                    constraints.update({slot: value for slot, value in act["slots"]})
            matches = sorted(
                (r for r in database if all(v == "dontcare" or str(r.get(s, "")).lower() == v.lower() for s, v in constraints.items())),
                key=lambda r: r["name"],
            )
            turns.append(("user", turn["usr"]["transcript"]))
            shown = topic or (matches[0] if matches else None)
            facts = [f"matches {len(matches)}"]
            if shown:
                facts.append(" ; ".join(f"{s} {shown[s]}" for s in CAMREST_SLOTS if shown.get(s)))
            reply = turn["sys"]["sent"]
            pairs.append(DialoguePair(render_context(turns, facts), reply, tuple(lexicon)))
            turns.append(("bot", reply))
            named = [name for name in by_name if name in reply.lower()]
            if named:
                topic = by_name[max(named, key=len)]
    return pairs


def load_taskmaster4(folder: Path, split: str) -> list[DialoguePair]:
    """Taskmaster-4 coffee orders, split by the id lists in ``splits/``; facts are the API results."""
    wanted = set((folder / "splits" / f"{split}.txt").read_text().split())
    pairs = []
    for path in sorted((folder / "data").glob("data_*.json")):
        for dialogue in json.loads(path.read_text(encoding="utf-8")):
            if dialogue["conversation_id"] not in wanted:
                continue
            turns: list[tuple[str, str]] = []
            facts: list[str] = []
            values: list[str] = []
            for utterance in dialogue["utterances"]:
                if utterance["speaker"] == "user":
                    turns.append(("user", utterance["text"]))
                    facts = _api_facts(utterance.get("annotations", []), values)
                    continue
                if turns:
                    pairs.append(DialoguePair(render_context(turns, facts), utterance["text"], tuple(dict.fromkeys(values))))
                turns.append(("bot", utterance["text"]))
                facts = []
    return pairs


def _api_facts(annotations: list[dict[str, str]], values: list[str]) -> list[str]:
    """One fact per API response (``name -> values``); collects its values into ``values``."""
    facts = []
    calls = {a["context"].split("_")[-1]: a["value"] for a in annotations if a["name"] == "api_call"}
    for annotation in annotations:
        if annotation["name"] != "response":
            continue
        try:
            leaves = list(dict.fromkeys(_leaves(json.loads(annotation["value"]))))
        except json.JSONDecodeError:
            continue
        values.extend(v.lower() for v in leaves if len(v) > 1)
        name = calls.get(annotation["context"].split("_")[-1], "api")
        facts.append(f"{name} -> {', '.join(leaves[:20])}")
    return facts


def _leaves(data: Any, key: str = "") -> list[str]:
    if isinstance(data, dict):
        return [leaf for k, v in data.items() if k not in TM4_SKIPPED_KEYS for leaf in _leaves(v, k)]
    if isinstance(data, list):
        return [leaf for item in data for leaf in _leaves(item, key)]
    return [] if data is None else [str(data)]
