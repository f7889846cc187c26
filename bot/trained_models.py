"""A trained model on disk: whether there is one, its version, and loading the NLU model.

Apart from `bot.runtime` so that the parsing child process loads the model without importing
the rest of the bot (the server, the store, the channels).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from slm.manifest import MANIFEST

if TYPE_CHECKING:  # torch: imported where a model is loaded in this process, never by a worker that parses in a child
    from slm.nlu import NLUModel


class ModelMissing(FileNotFoundError):
    """No trained model where the project expects one."""


def model_version(model_dir: Path) -> str:
    """A short, stable id of a trained model: the hash of its manifest (which hashes every file)."""
    return hashlib.sha256((model_dir / MANIFEST).read_bytes()).hexdigest()[:12]


def load_nlu(model_dir: Path) -> tuple[NLUModel, str]:
    """The trained NLU model and its version.

    Raises:
        ModelMissing: nothing trained yet (the message says to run `slmbot train`).
        CheckpointError: the model files are corrupt or incompatible.
    """
    from slm.nlu import NLUModel

    require_trained(model_dir)
    return NLUModel.load(model_dir), model_version(model_dir)


def require_trained(model_dir: Path) -> None:
    """Raises ModelMissing, saying to run `slmbot train`, when ``model_dir`` holds no saved model."""
    if not (model_dir / MANIFEST).is_file():
        raise ModelMissing(f"no trained model at {model_dir}: run `slmbot train` first")
