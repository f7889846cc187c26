"""One directory per model: weights, config, labels, tokenizer, metadata, and their checksums.

``checkpoint.json`` is written last and records every file's size and SHA-256, so a
truncated, half-written or modified file is refused with a message naming it. Weights are a
plain state_dict loaded with ``weights_only=True``: loading never runs pickled code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from slm.errors import CheckpointError
from slm.manifest import FORMAT_VERSION, MANIFEST, file_record, verified_manifest

WEIGHTS = "weights.pt"


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
        "files": {name: file_record(directory / name) for name in names},
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
    manifest = verified_manifest(directory, kind)
    try:
        state = torch.load(directory / WEIGHTS, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for unreadable archives
        raise CheckpointError(f"{directory / WEIGHTS}: cannot be read as model weights ({error})") from None
    return state, manifest
