"""Load labelled utterances from the three accepted formats, failing with file:line: reason.

1. a folder holding ``seq.in``, ``seq.out`` and ``label`` (the SNIPS/ATIS layout);
2. a ``.jsonl`` file of ``{"text", "intent", "entities": [{"start", "end", "entity"}]}``;
3. a bot project's ``intents/`` folder of Rasa-style YAML (see `slm.intents_yaml`).

Everything is validated before it is returned, so training never starts on broken data.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from slm.errors import DataError
from slm.examples import Example, Span, bio_to_spans
from slm.intents_yaml import load_intents_folder

SEQ_FILES = ("seq.in", "seq.out", "label")


def load_examples(path: str | Path) -> list[Example]:
    """Read a dataset split from any accepted format.

    Raises:
        DataError: the path is not a recognised dataset, or any record in it is malformed.
    """
    path = Path(path)
    present = [name for name in SEQ_FILES if (path / name).is_file()]
    if present and len(present) < len(SEQ_FILES):
        missing = ", ".join(name for name in SEQ_FILES if name not in present)
        raise DataError(path, None, f"has {', '.join(present)} but not {missing}")
    if present:
        return _load_seq_folder(path)
    if path.is_file() and path.suffix == ".jsonl":
        return _load_jsonl(path)
    if path.is_dir() and (any(path.glob("*.yml")) or any(path.glob("*.yaml"))):
        return load_intents_folder(path)
    if not path.exists():
        raise DataError(path, None, "no such file or folder")
    raise DataError(
        path,
        None,
        "not a dataset: expected a folder with seq.in/seq.out/label, a .jsonl file, "
        "or an intents/ folder of .yml files",
    )


def _word_offsets(text: str) -> list[tuple[int, int]]:
    offsets, position = [], 0
    for word in text.split(" "):
        offsets.append((position, position + len(word)))
        position += len(word) + 1
    return offsets


def _load_seq_folder(folder: Path) -> list[Example]:
    columns = {name: (folder / name).read_text(encoding="utf-8").splitlines() for name in SEQ_FILES}
    counts = {name: len(lines) for name, lines in columns.items()}
    if len(set(counts.values())) != 1:
        detail = ", ".join(f"{name} has {n}" for name, n in counts.items())
        raise DataError(folder, None, f"files have different line counts ({detail})")
    examples = []
    for line_no, (words_line, tags_line, intent) in enumerate(zip(*columns.values()), start=1):
        words, tags = words_line.split(), tags_line.split()
        if not words:
            raise DataError(folder / "seq.in", line_no, "empty utterance")
        if len(words) != len(tags):
            raise DataError(
                folder / "seq.out", line_no, f"{len(tags)} tags for {len(words)} tokens in seq.in"
            )
        for tag in tags:
            if tag != "O" and not (tag[:2] in ("B-", "I-") and len(tag) > 2):
                raise DataError(folder / "seq.out", line_no, f"invalid BIO tag '{tag}'")
        if not intent.strip():
            raise DataError(folder / "label", line_no, "empty intent label")
        text = " ".join(words)
        spans = tuple(bio_to_spans(tags, _word_offsets(text)))
        examples.append(Example(text, intent.strip(), spans, origin=f"{folder / 'seq.in'}:{line_no}"))
    return examples


def _load_jsonl(path: Path) -> list[Example]:
    examples = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(path, line_no, f"invalid JSON: {error.msg}") from None
        examples.append(_parse_record(record, path, line_no))
    if not examples:
        raise DataError(path, None, "no examples")
    return examples


def _parse_record(record: object, path: Path, line_no: int) -> Example:
    if not isinstance(record, dict):
        raise DataError(path, line_no, "expected a JSON object")
    text, intent = record.get("text"), record.get("intent")
    if not isinstance(text, str) or not text.strip():
        raise DataError(path, line_no, "'text' must be a non-empty string")
    if not isinstance(intent, str) or not intent.strip():
        raise DataError(path, line_no, "'intent' must be a non-empty string")
    entities = record.get("entities", [])
    if not isinstance(entities, list):
        raise DataError(path, line_no, "'entities' must be a list")
    spans = []
    for entity in entities:
        if not isinstance(entity, dict):
            raise DataError(path, line_no, "each entity must be an object")
        start, end, label = entity.get("start"), entity.get("end"), entity.get("entity")
        if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start < end <= len(text):
            raise DataError(
                path, line_no, f"entity offsets {start!r}-{end!r} outside the text (length {len(text)})"
            )
        if not isinstance(label, str) or not label:
            raise DataError(path, line_no, "entity needs a non-empty 'entity' name")
        spans.append(Span(start, end, label))
    spans.sort()
    for before, after in zip(spans, spans[1:]):
        if after.start < before.end:
            raise DataError(path, line_no, f"entities '{before.label}' and '{after.label}' overlap")
    return Example(text, intent.strip(), tuple(spans), origin=f"{path}:{line_no}")



def split_dev(examples: list[Example], share: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Hold out ``share`` of each intent's examples (at least one when it has two) as dev data."""
    rng = random.Random(seed)
    by_intent: dict[str, list[Example]] = {}
    for example in examples:
        by_intent.setdefault(example.intent, []).append(example)
    train, dev = [], []
    for group in by_intent.values():
        group = group[:]
        rng.shuffle(group)
        n_dev = max(1, round(len(group) * share)) if len(group) > 1 else 0
        dev.extend(group[:n_dev])
        train.extend(group[n_dev:])
    return train, dev
