"""config.toml -> frozen, typed settings. Secrets never live here: they come from the environment."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from slm.joint import ModelSizes
from slm.train import TrainSettings

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
class ServerSettings:
    """``[server]``: where `slmbot run` listens."""

    host: str = "127.0.0.1"
    port: int = 8000


@dataclass(frozen=True)
class Config:
    """The whole project configuration, paths resolved against the project folder."""

    models_dir: Path
    nlu: NLUSettings
    server: ServerSettings

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
        else:
            valid = isinstance(value, str) if issubclass(expected, Path) else type(value) is expected
        if not valid:
            raise ConfigError(f"{where}: '{key}' must be {expected.__name__}, got {value!r}")
    return cls(**{k: Path(v) if isinstance(getattr(defaults, k), Path) else v for k, v in values.items()})


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
    return Config(root / project.get("models_dir", "models"), nlu_settings, server)
