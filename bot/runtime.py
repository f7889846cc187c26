"""Assemble a runnable bot from a project: domain, trained model, store, actions, dialogue manager."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from bot.actions import ActionRunner
from bot.config import Config
from bot.coordination import Coordinator, make_coordinator
from bot.domain import Domain, load_valid_domain
from bot.generation import ReplyGenerator
from bot.manager import DialogueManager
from bot.privacy import Redactor
from bot.safety import SafetyGate, template_words
from bot.storage.store import ConversationStore
from bot.understanding import Lexicon, Understanding
from slm.errors import CheckpointError
from slm.generator import Generator
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


def load_reply_generator(
    config: Config, domain: Domain, store: ConversationStore, directory: Path | None = None
) -> ReplyGenerator:
    """The trained generator (the live copy, or ``directory``) behind the safety gate, which knows
    the bot's entity values and templates.

    Raises:
        ModelMissing, CheckpointError.
    """
    directory = directory or config.generator_model_dir
    if not (directory / "checkpoint.json").is_file():
        raise ModelMissing(f"the generator is enabled but not trained ({directory}): run `slmbot train`")
    version, generator = model_version(directory), Generator.load(directory)
    if not any(m.version == version for m in store.models("generator")):
        store.record_model("generator", version, str(directory), generator.meta.get("metrics", {}))
    values = {e.text[s.start : s.end].lower() for e in domain.examples for s in e.spans}
    values |= {text.lower() for entry in domain.lexicon for _, text in entry.items if entry.kind != "regex"}
    texts = [t for r in domain.responses.values() for v in r.variants for t in (v.text, *(b.title for b in v.buttons))]
    gate = SafetyGate(config.generator.min_score, frozenset(values), template_words(texts))
    return ReplyGenerator(generator, gate, version, config.generator.beam, config.generator.length_penalty)


@dataclass
class BotRuntime:
    """Everything a channel needs to talk to the bot."""

    config: Config
    domain: Domain
    manager: DialogueManager
    store: ConversationStore

    @property
    def coordinator(self) -> Coordinator:
        """What the workers share (locks, seen ids, fan-out); the dialogue manager's."""
        return self.manager.coordinator

    @classmethod
    def load(
        cls,
        config: Config,
        *,
        model_dir: Path | None = None,
        database_url: str | None = None,
        data_dir: Path | None = None,
        seed: int | None = None,
        redis_url: str | None = None,
    ) -> BotRuntime:
        """Validate the project, load its model, migrate the database and wire the dialogue manager.

        Raises:
            DomainError, ModelMissing, CheckpointError, StorageUnavailable.
        """
        domain = load_valid_domain(config.root, config.nlu.data, config.dialogue)
        directory = model_dir or config.nlu_model_dir
        nlu, version = load_nlu(directory)
        unknown = set(domain.intents) - set(nlu.intents)
        if unknown:
            raise CheckpointError(f"{directory}: model does not know intent(s) {', '.join(sorted(unknown))}: run `slmbot train`")
        store = ConversationStore(database_url or config.database_url)
        store.migrate()
        if not any(m.version == version for m in store.models("nlu")):
            store.record_model("nlu", version, str(directory), nlu.meta.get("metrics", {}))
        understanding = Understanding(nlu, Lexicon.from_entries(domain.lexicon), version, directory)
        actions = ActionRunner(domain.python_actions, domain.http_actions, config.actions.timeout)
        generator = load_reply_generator(config, domain, store) if config.generator.enabled else None
        coordinator = make_coordinator(config.redis_url if redis_url is None else redis_url, config.redis.prefix)
        redactor = Redactor(config.privacy.patterns) if config.privacy.redact_at_write else None
        manager = DialogueManager(
            domain, understanding, store, actions, data_dir or config.data_dir, config.dialogue, seed, generator, coordinator, redactor
        )
        return cls(config, domain, manager, store)

    async def close(self) -> None:
        """Release the HTTP client of webhook actions, the Redis connections, the database pool and
        the parsing process."""
        await self.manager.actions.close()
        await self.manager.understanding.close()
        await self.coordinator.close()
        self.store.close()
