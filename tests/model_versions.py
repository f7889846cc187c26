"""Several versions of one trained model, for registry and hot-reload tests."""

import json
import shutil
from pathlib import Path


def variant(model_dir: Path, where: Path, note: str) -> Path:
    """Another version of the same model: identical weights, a different manifest (so a different version id)."""
    shutil.copytree(model_dir, where)
    manifest = json.loads((where / "checkpoint.json").read_text())
    manifest.setdefault("training", {})["note"] = note
    (where / "checkpoint.json").write_text(json.dumps(manifest))
    return where
