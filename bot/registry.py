"""The model registry: every trained model kept under ``models/registry/<kind>/<version>/`` and
recorded in the database (data hash, metrics, parent); one version per kind is live.

The live copy (``models/nlu``, ``models/generator``) is what a starting server loads; running
servers watch the database and switch to a newly promoted version by themselves
(`bot.reload`). Promotion copies the version next to the live folder first and swaps it in
with two renames, so a starting server never reads half a model.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

from bot.trained_models import model_version
from bot.storage.store import ConversationStore
from bot.storage.tables import ModelVersion


class RegistryError(LookupError):
    """No such version, nothing to roll back to, or its files are gone."""


def registry_root(models_dir: Path, kind: str) -> Path:
    return models_dir / "registry" / kind


def register(store: ConversationStore, kind: str, model_dir: Path, models_dir: Path) -> ModelVersion:
    """Keep a copy of the freshly trained ``model_dir`` and record it as the live version of ``kind``."""
    version = model_version(model_dir)
    kept = registry_root(models_dir, kind) / version
    if not kept.is_dir():
        _copy_into(model_dir, kept)
    manifest = json.loads((model_dir / "checkpoint.json").read_text(encoding="utf-8"))
    live = store.active_model(kind)
    return store.record_model(
        kind, version, str(kept), manifest.get("metrics", {}),
        data_hash=manifest.get("training", {}).get("data_sha256"), parent=live.version if live and live.version != version else None,
    )


def promote(store: ConversationStore, kind: str, version: str, live_dir: Path) -> ModelVersion:
    """Make ``version`` live: its files become ``live_dir`` and running servers switch to it.

    Raises:
        RegistryError: unknown version, or its registry folder is missing.
    """
    known = [m for m in store.models(kind) if m.version == version]
    if not known:
        raise RegistryError(f"no {kind} model version {version} (see `slmbot models list`)")
    source = Path(known[0].path)
    if not (source / "checkpoint.json").is_file():
        raise RegistryError(f"{kind} version {version}: its files at {source} are gone")
    if source.resolve() != live_dir.resolve():
        _copy_into(source, live_dir)
    return store.promote(kind, version)


def rollback(store: ConversationStore, kind: str, live_dir: Path) -> ModelVersion:
    """Make the version that was live before the current one live again.

    Raises:
        RegistryError: no earlier live version.
    """
    live = store.active_model(kind)
    earlier = [m for m in store.models(kind) if m.promoted_at is not None and (live is None or m.version != live.version)]
    if not earlier:
        raise RegistryError(f"no earlier {kind} version was ever live: nothing to roll back to")
    previous = max(earlier, key=lambda m: m.promoted_at)  # type: ignore[arg-type, return-value]
    return promote(store, kind, previous.version, live_dir)


def _copy_into(source: Path, target: Path) -> None:
    """Replace ``target`` by a copy of ``source``: copy beside it, then swap with renames."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
    shutil.copytree(source, staging)
    retired = target.with_name(f".{target.name}.old.{uuid.uuid4().hex[:8]}")
    if target.exists():
        target.rename(retired)
    staging.rename(target)
    shutil.rmtree(retired, ignore_errors=True)
