"""Assemble a runnable bot from a project: domain, trained model, store, actions, dialogue manager."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from bot.actions import ActionRunner
from bot.config import Config
from bot.coordination import Coordinator, make_coordinator
from bot.domain import Domain, load_valid_domain
from bot.generation import ReplyGenerator
from bot.manager import DialogueManager
from bot.parse_process import ParseProcess
from bot.privacy import Redactor
from bot.safety import SafetyGate, template_words
from bot.storage.store import ConversationStore
from bot.trained_models import ModelMissing, load_nlu, model_version, require_trained
from bot.understanding import Lexicon, LocalUnderstanding, Understanding
from slm.errors import CheckpointError
from slm.manifest import MANIFEST, NLULabels, read_manifest


def load_understanding(directory: Path, lexicon: Lexicon, intents: Iterable[str], in_child: bool) -> Understanding:
    """The model in ``directory`` with the project's ``lexicon``, parsing in this process or, with
    ``in_child``, in a child process (this process then never imports torch).

    Raises:
        ModelMissing: nothing trained yet.
        CheckpointError: the model files are corrupt, or the model lacks some of the project's ``intents``.
        ParseProcessError: the child process could not load the model (the message says why).
    """
    require_trained(directory)
    labels = NLULabels.of(directory)
    unknown = set(intents) - set(labels.intents)
    if unknown:
        raise CheckpointError(f"{directory}: model does not know intent(s) {', '.join(sorted(unknown))}: run `slmbot train`")
    if in_child:
        return ParseProcess(directory, lexicon, model_version(directory), labels)
    nlu, version = load_nlu(directory)
    return LocalUnderstanding(nlu, lexicon, version)


def load_reply_generator(
    config: Config, domain: Domain, store: ConversationStore, directory: Path | None = None
) -> ReplyGenerator:
    """The trained generator (the live copy, or ``directory``) behind the safety gate, which knows
    the bot's entity values and templates.

    Raises:
        ModelMissing, CheckpointError.
    """
    from slm.generator import Generator

    directory = directory or config.generator_model_dir
    if not (directory / MANIFEST).is_file():
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
        parse_in_child: bool = False,
    ) -> BotRuntime:
        """Validate the project, load its model, migrate the database and wire the dialogue manager.

        Args:
            parse_in_child: parse in a child process (`bot.parse_process`), as a server does with
                ``[server] parse_process``; the tests, the shell and the conversation tests parse here.

        Raises:
            DomainError, ModelMissing, CheckpointError, ParseProcessError, StorageUnavailable.
        """
        domain = load_valid_domain(config.root, config.nlu.data, config.dialogue)
        directory = model_dir or config.nlu_model_dir
        store = ConversationStore(database_url or config.database_url)
        store.migrate()
        actions = ActionRunner(domain.python_actions, domain.http_actions, config.actions.timeout)
        generator = load_reply_generator(config, domain, store) if config.generator.enabled else None
        coordinator = make_coordinator(config.redis_url if redis_url is None else redis_url, config.redis.prefix)
        redactor = Redactor(config.privacy.patterns) if config.privacy.redact_at_write else None
        # Loaded last, so that a broken project fails before a parsing process starts.
        understanding = load_understanding(directory, Lexicon.from_entries(domain.lexicon), domain.intents, parse_in_child)
        if not any(m.version == understanding.version for m in store.models("nlu")):
            store.record_model("nlu", understanding.version, str(directory), read_manifest(directory).get("metrics", {}))
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
