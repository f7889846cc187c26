"""Assemble a runnable bot from a project: domain, trained model, store, actions, dialogue manager."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from bot.actions import ActionRunner
from bot.config import Config
from bot.domain import Domain, load_valid_domain
from bot.manager import DialogueManager
from bot.storage.store import ConversationStore
from bot.understanding import Lexicon, Understanding
from slm.errors import CheckpointError
from slm.nlu import NLUModel


class ModelMissing(FileNotFoundError):
    """No trained model where the project expects one."""


def model_version(model_dir: Path) -> str:
    """A short, stable id of a trained model: the hash of its manifest (which hashes every file)."""
    return hashlib.sha256((model_dir / "checkpoint.json").read_bytes()).hexdigest()[:12]


def load_nlu(model_dir: Path) -> tuple[NLUModel, str]:
    """The trained NLU model and its version.

    Raises:
        ModelMissing: nothing trained yet (the message says to run `slmbot train`).
        CheckpointError: the model files are corrupt or incompatible.
    """
    if not (model_dir / "checkpoint.json").is_file():
        raise ModelMissing(f"no trained model at {model_dir}: run `slmbot train` first")
    return NLUModel.load(model_dir), model_version(model_dir)


@dataclass
class BotRuntime:
    """Everything a channel needs to talk to the bot."""

    config: Config
    domain: Domain
    manager: DialogueManager
    store: ConversationStore

    @classmethod
    def load(
        cls,
        config: Config,
        *,
        model_dir: Path | None = None,
        database_url: str | None = None,
        data_dir: Path | None = None,
        seed: int | None = None,
    ) -> BotRuntime:
        """Validate the project, load its model, migrate the database and wire the dialogue manager.

        Raises:
            DomainError, ModelMissing, CheckpointError, StorageUnavailable.
        """
        domain = load_valid_domain(config.root, config.nlu.data)
        directory = model_dir or config.nlu_model_dir
        nlu, version = load_nlu(directory)
        unknown = set(domain.intents) - set(nlu.intents)
        if unknown:
            raise CheckpointError(f"{directory}: model does not know intent(s) {', '.join(sorted(unknown))}: run `slmbot train`")
        store = ConversationStore(database_url or config.database_url)
        store.migrate()
        if not any(m.version == version for m in store.models("nlu")):
            store.record_model("nlu", version, str(directory), nlu.meta.get("metrics", {}))
        understanding = Understanding(nlu, Lexicon.from_entries(domain.lexicon), version)
        actions = ActionRunner(domain.python_actions, domain.http_actions, config.actions.timeout)
        manager = DialogueManager(domain, understanding, store, actions, data_dir or config.data_dir, config.dialogue, seed)
        return cls(config, domain, manager, store)

    async def close(self) -> None:
        """Release the HTTP client of webhook actions and the database pool."""
        await self.manager.actions.close()
        self.store.close()
