"""config.toml -> frozen, typed settings. Secrets never live here: they come from the environment."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from bot.flows import Policy
from slm.settings import ModelSizes, Seq2SeqConfig, TrainSettings

T = TypeVar("T")


class ConfigError(ValueError):
    """config.toml cannot be read or holds an unknown or ill-typed setting."""


@dataclass(frozen=True)
class NLUSettings:
    """``[nlu]``: where the examples are, the model's shape and how to train it."""

    data: Path = Path("intents")
    dev_share: float = 0.1
    model: ModelSizes = field(default_factory=ModelSizes)
    training: TrainSettings = field(default_factory=TrainSettings)


@dataclass(frozen=True)
class GeneratorSettings:
    """``[generator]``: the seq2seq reply generator (off unless ``enabled``), its decoding and gate."""

    enabled: bool = False
    beam: int = 1
    length_penalty: float = 1.0
    min_score: float = -1.0
    dev_share: float = 0.1
    model: Seq2SeqConfig = field(default_factory=Seq2SeqConfig)
    training: TrainSettings = field(default_factory=TrainSettings)


@dataclass(frozen=True)
class ServerSettings:
    """``[server]``: where `slmbot run` listens, how often it checks for a newly promoted model
    (0: never), and how many threads a worker gives blocking work (model batches, database
    calls, actions): concurrent turns share batches, so a few suffice, and each thread more
    costs memory. ``parse_process``: each worker parses in a child process of its own, so that
    parsing and the rest of a turn run on two cores and only the child loads torch and the
    model (`bot.parse_process`); false parses in the worker, one process fewer."""

    host: str = "127.0.0.1"
    port: int = 8000
    model_poll_seconds: float = 5.0
    worker_threads: int = 8
    parse_process: bool = True

    def __post_init__(self) -> None:
        if self.worker_threads < 1:
            raise ConfigError(f"[server] worker_threads must be 1 or more, got {self.worker_threads}")


@dataclass(frozen=True)
class DatabaseSettings:
    """``[database]``: the conversation store; ``DATABASE_URL`` in the environment overrides ``url``."""

    url: str = "sqlite:///data/slmbot.db"


@dataclass(frozen=True)
class ActionSettings:
    """``[actions]``: how long a custom action may take before the flow takes its failure path."""

    timeout: float = 10.0


@dataclass(frozen=True)
class TelegramSettings:
    """``[channels.telegram]``: the token comes from ``TELEGRAM_BOT_TOKEN``, the webhook secret from
    ``TELEGRAM_WEBHOOK_SECRET``; ``base_url`` points at another Bot API server (tests run a fake one)."""

    enabled: bool = False
    mode: str = "webhook"
    base_url: str = "https://api.telegram.org"
    start_payload: str = "/greet"

    def __post_init__(self) -> None:
        if self.mode not in ("webhook", "polling"):
            raise ConfigError(f"[channels.telegram] mode must be 'webhook' or 'polling', got {self.mode!r}")


@dataclass(frozen=True)
class WebSettings:
    """``[channels.web]``: the chat widget; pages may embed it only from ``allowed_origins``."""

    enabled: bool = True
    allowed_origins: tuple[str, ...] = ("http://127.0.0.1:8000", "http://localhost:8000")


@dataclass(frozen=True)
class RedisSettings:
    """``[redis]``: empty means one process (in-process locks); ``REDIS_URL`` overrides ``url``.

    With Redis, several workers and hosts share per-conversation locks, seen update ids and
    WebSocket fan-out.
    """

    url: str = ""
    prefix: str = "slmbot"


@dataclass(frozen=True)
class PrivacySettings:
    """``[privacy]``: personal data in logs. Text leaving the store for training or export is
    always redacted; ``redact_at_write`` also redacts it before it is stored. Conversations
    idle for more than ``retention_days`` (0: keep) are deleted or anonymized by `slmbot logs purge`.
    ``patterns`` adds the project's own kinds of personal data: name -> regular expression.
    """

    redact_at_write: bool = False
    retention_days: int = 0
    retention: str = "delete"
    patterns: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.retention not in ("delete", "anonymize"):
            raise ConfigError(f"[privacy] retention must be 'delete' or 'anonymize', got {self.retention!r}")
        if self.retention_days < 0:
            raise ConfigError("[privacy] retention_days must be 0 (keep) or more")
        for name, pattern in self.patterns.items():
            try:
                re.compile(pattern)
            except re.error as error:
                raise ConfigError(f"[privacy] patterns: {name}: invalid regular expression: {error}") from None


@dataclass(frozen=True)
class RetrainSettings:
    """``[retrain]``: fine-tuning the live model on the project data plus annotated logs.

    ``holdout_share`` of the annotated examples (at least one per intent that has two) is kept
    for the evaluation gate; the candidate goes live only when no score of the project's dev
    data, that hold-out or the conversation tests is more than ``margin`` below the live model's.
    Each annotated example counts ``annotation_weight`` times in training. Up to
    ``new_pieces`` frequent words the live tokenizer splits into many pieces get a piece of
    their own (0: keep the live tokenizer unchanged). With ``distill`` > 0, when annotations
    bring new intents, the old examples the live model reads right also learn its own intent
    distribution, counted ``distill`` next to the gold label, so that a newcomer takes fewer
    of its neighbours' messages (at the price of learning the newcomer more slowly; off by
    default, see the learning benchmark). ``ema``: dev scores judge, and the candidate keeps, a
    moving average of the weights with at most this decay per step (0: the last step's), so
    successive retrainings move more steadily (see the learning benchmark).
    ``pseudo_labels`` adds unannotated messages the live model parsed with at least
    ``pseudo_label_confidence`` (off: a model learning from itself can drift).
    """

    epochs: int = 60
    lr: float = 0.001
    margin: float = 0.01
    holdout_share: float = 0.2
    annotation_weight: int = 3
    new_pieces: int = 500
    distill: float = 0.0
    ema: float = 0.99
    seed: int = 0
    pseudo_labels: bool = False
    pseudo_label_confidence: float = 0.95


@dataclass(frozen=True)
class Config:
    """The whole project configuration, paths resolved against the project folder."""

    root: Path
    models_dir: Path
    data_dir: Path
    nlu: NLUSettings
    server: ServerSettings
    dialogue: Policy = field(default_factory=Policy)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    actions: ActionSettings = field(default_factory=ActionSettings)
    generator: GeneratorSettings = field(default_factory=GeneratorSettings)
    telegram: TelegramSettings = field(default_factory=TelegramSettings)
    web: WebSettings = field(default_factory=WebSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    retrain: RetrainSettings = field(default_factory=RetrainSettings)

    @property
    def redis_url(self) -> str:
        """``REDIS_URL`` when set, else the configured URL ("" for a single process)."""
        return os.environ.get("REDIS_URL") or self.redis.url

    @property
    def generator_model_dir(self) -> Path:
        """Where `slmbot train` writes, and the server reads, the reply generator."""
        return self.models_dir / "generator"

    @property
    def database_url(self) -> str:
        """``DATABASE_URL`` when set, else the configured URL; a relative SQLite path lives under the project.

        The URL may hold a password, which is why the environment variable exists: keep secrets
        out of config.toml.
        """
        url = os.environ.get("DATABASE_URL") or self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
            return prefix + str(self.root / url.removeprefix(prefix))
        return url

    @property
    def nlu_model_dir(self) -> Path:
        """Where `slmbot train` writes, and `slmbot run` reads, the NLU model."""
        return self.models_dir / "nlu"


def _section(cls: type[T], values: dict[str, Any], where: str) -> T:
    """Build settings dataclass ``cls`` from a TOML table, rejecting unknown keys and wrong types."""
    defaults = cls()  # every settings class has defaults for all fields
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    for key, value in values.items():
        if key not in names:
            raise ConfigError(f"{where}: unknown setting '{key}' (known: {', '.join(names)})")
        expected = type(getattr(defaults, key))
        if expected is float:
            valid = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif expected is tuple:
            valid = isinstance(value, list) and all(isinstance(item, str) for item in value)
        else:
            valid = isinstance(value, str) if issubclass(expected, Path) else type(value) is expected
        if not valid:
            raise ConfigError(f"{where}: '{key}' must be {expected.__name__}, got {value!r}")
    converted = {k: Path(v) if isinstance(getattr(defaults, k), Path) else tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    try:
        return cls(**converted)
    except ConfigError:
        raise
    except ValueError as error:  # a settings class of slm/ checking its own values
        raise ConfigError(f"{where}: {error}") from None


def load_config(path: Path) -> Config:
    """Read ``config.toml``; a missing file gives the defaults for a project in its folder.

    Raises:
        ConfigError: invalid TOML, unknown keys or wrong value types, with the file named.
    """
    path = Path(path)
    raw: dict[str, Any] = {}
    if path.is_file():
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: {error}") from None
    root = path.parent.resolve()
    project = dict(raw.get("project", {}))
    nlu = dict(raw.get("nlu", {}))
    model = _section(ModelSizes, nlu.pop("model", {}), f"{path}: [nlu.model]")
    training = _section(TrainSettings, nlu.pop("training", {}), f"{path}: [nlu.training]")
    basics = _section(NLUSettings, nlu, f"{path}: [nlu]")
    nlu_settings = NLUSettings(data=root / basics.data, dev_share=basics.dev_share, model=model, training=training)
    server = _section(ServerSettings, raw.get("server", {}), f"{path}: [server]")
    dialogue = _section(Policy, raw.get("dialogue", {}), f"{path}: [dialogue]")
    database = _section(DatabaseSettings, raw.get("database", {}), f"{path}: [database]")
    actions = _section(ActionSettings, raw.get("actions", {}), f"{path}: [actions]")
    generator_raw = dict(raw.get("generator", {}))
    generator_model = _section(Seq2SeqConfig, generator_raw.pop("model", {}), f"{path}: [generator.model]")
    generator_training = _section(TrainSettings, generator_raw.pop("training", {}), f"{path}: [generator.training]")
    generator = replace(_section(GeneratorSettings, generator_raw, f"{path}: [generator]"), model=generator_model, training=generator_training)
    channels = dict(raw.get("channels", {}))
    telegram = _section(TelegramSettings, channels.pop("telegram", {}), f"{path}: [channels.telegram]")
    web = _section(WebSettings, channels.pop("web", {}), f"{path}: [channels.web]")
    if channels:
        raise ConfigError(f"{path}: unknown channel(s) {', '.join(sorted(channels))} (known: telegram, web)")
    redis = _section(RedisSettings, raw.get("redis", {}), f"{path}: [redis]")
    privacy = _section(PrivacySettings, raw.get("privacy", {}), f"{path}: [privacy]")
    retrain = _section(RetrainSettings, raw.get("retrain", {}), f"{path}: [retrain]")
    sections = {"project", "nlu", "server", "dialogue", "database", "actions", "generator", "channels", "redis", "privacy", "retrain"}
    unknown = set(raw) - sections
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}")
    return Config(
        root, root / project.get("models_dir", "models"), root / project.get("data_dir", "data"), nlu_settings, server, dialogue,
        database, actions, generator, telegram, web, redis, privacy, retrain,
    )
