"""One directory per model: weights, config, labels, tokenizer, metadata, and their checksums.

``checkpoint.json`` is written last and records every file's size and SHA-256, so a
truncated, half-written or modified file is refused with a message naming it. Weights are a
plain state_dict loaded with ``weights_only=True``: loading never runs pickled code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from slm.errors import CheckpointError

MANIFEST = "checkpoint.json"
WEIGHTS = "weights.pt"
FORMAT_VERSION = 1


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_checkpoint(
    directory: Path, kind: str, state_dict: dict[str, torch.Tensor], meta: dict[str, Any], files: dict[str, bytes]
) -> None:
    """Write weights, extra ``files`` (e.g. the tokenizer) and the manifest into ``directory``.

    Args:
        kind: versioned model name (``joint.v1``); loading checks it.
        meta: JSON-serialisable config, labels, training metadata and metrics.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MANIFEST).unlink(missing_ok=True)  # a crash mid-save leaves no valid manifest
    torch.save({k: v.detach().cpu() for k, v in state_dict.items()}, directory / WEIGHTS)
    for name, content in files.items():
        (directory / name).write_bytes(content)
    names = [WEIGHTS, *files]
    manifest = {
        "format": FORMAT_VERSION,
        "kind": kind,
        "files": {n: {"bytes": (directory / n).stat().st_size, "sha256": _sha256(directory / n)} for n in names},
        **meta,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")


def load_checkpoint(directory: Path, kind: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Verify and load a checkpoint; returns (state_dict, manifest).

    Raises:
        CheckpointError: missing directory or manifest, wrong kind, or any file whose size or
            checksum differs from the manifest, or that torch cannot read as plain tensors.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest.get("kind") != kind:
        raise CheckpointError(f"{directory}: holds a '{manifest.get('kind')}' model, expected '{kind}'")
    for name, expected in manifest["files"].items():
        path = directory / name
        if not path.is_file():
            raise CheckpointError(f"{path}: missing from the model directory")
        size = path.stat().st_size
        if size != expected["bytes"]:
            raise CheckpointError(f"{path}: truncated or altered ({size} bytes, expected {expected['bytes']})")
        if _sha256(path) != expected["sha256"]:
            raise CheckpointError(f"{path}: checksum mismatch, the file was modified after saving")
    try:
        state = torch.load(directory / WEIGHTS, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for unreadable archives
        raise CheckpointError(f"{directory / WEIGHTS}: cannot be read as model weights ({error})") from None
    return state, manifest


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
