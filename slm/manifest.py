"""``checkpoint.json``: what a model directory holds, and the check that each file is as saved.

Apart from `slm.checkpoint`, which reads and writes the weights with torch, so that a process
that only needs to know a model (its kind, its labels) does not import torch: a serving worker
whose parsing runs in a child process never does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slm.errors import CheckpointError

MANIFEST = "checkpoint.json"
FORMAT_VERSION = 1
NLU_KIND = "joint.v1"
"""The kind of the joint intent + slot model (`slm.nlu`)."""


def file_record(path: Path) -> dict[str, Any]:
    """What the manifest keeps of a saved file: its size and SHA-256."""
    return {"bytes": path.stat().st_size, "sha256": _sha256(path)}


def read_manifest(directory: Path) -> dict[str, Any]:
    """The parsed ``checkpoint.json`` of a model directory (files are not verified here)."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such model directory")
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; the model was not saved completely")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION or "files" not in manifest:
        raise CheckpointError(f"{path}: not a slmbot checkpoint of format {FORMAT_VERSION}")
    return manifest


def manifest_of_kind(directory: Path, kind: str) -> dict[str, Any]:
    """The manifest of ``directory``, which must describe a ``kind`` model (files not verified).

    Raises:
        CheckpointError: missing directory or manifest, or another kind of model.
    """
    manifest = read_manifest(directory)
    if manifest.get("kind") != kind:
        raise CheckpointError(f"{directory}: holds a '{manifest.get('kind')}' model, expected '{kind}'")
    return manifest


def verified_manifest(directory: Path, kind: str) -> dict[str, Any]:
    """The manifest of ``directory`` once every file it lists has its recorded size and checksum.

    Raises:
        CheckpointError: as `manifest_of_kind`, or a file missing, truncated or modified.
    """
    directory = Path(directory)
    manifest = manifest_of_kind(directory, kind)
    for name, expected in manifest["files"].items():
        path = directory / name
        if not path.is_file():
            raise CheckpointError(f"{path}: missing from the model directory")
        size = path.stat().st_size
        if size != expected["bytes"]:
            raise CheckpointError(f"{path}: truncated or altered ({size} bytes, expected {expected['bytes']})")
        if _sha256(path) != expected["sha256"]:
            raise CheckpointError(f"{path}: checksum mismatch, the file was modified after saving")
    return manifest


@dataclass(frozen=True)
class NLULabels:
    """What an NLU model can answer: its intents and the entity types its tags mark."""

    intents: tuple[str, ...]
    entity_types: tuple[str, ...]

    @classmethod
    def from_tags(cls, intents: list[str], tags: list[str]) -> NLULabels:
        """From the model's label vocabularies (BIO tags name each entity type twice)."""
        return cls(tuple(intents), tuple(sorted({tag[2:] for tag in tags if tag != "O"})))

    @classmethod
    def of(cls, directory: Path) -> NLULabels:
        """The labels of the NLU model saved in ``directory``, read from its manifest alone: the
        process that loads the weights verifies the files (once, as it reads them).

        Raises:
            CheckpointError: as `manifest_of_kind`, or the manifest lacks the labels.
        """
        manifest = manifest_of_kind(directory, NLU_KIND)
        try:
            return cls.from_tags(manifest["labels"]["intents"], manifest["labels"]["tags"])
        except (KeyError, TypeError):
            raise CheckpointError(f"{Path(directory) / MANIFEST}: no intent and tag labels") from None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
