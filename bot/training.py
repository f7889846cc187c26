"""What `slmbot train`, `slmbot retrain`, `slmbot nlu train` and `slmbot nlu pretrain` do, with progress display."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bot.config import Config, GeneratorSettings
from bot.storage.store import ConversationStore
from slm.datasets import load_examples, split_dev
from slm.dialogue_corpora import DialoguePair
from slm.errors import DataError
from slm.settings import TrainSettings
from slm.train import EpochReport, is_main_process

if TYPE_CHECKING:
    from bot.retrain import GateReport


def _settings(project: Config, device: str, seed: int | None, epochs: int | None) -> TrainSettings:
    overrides = {"device": device, "seed": seed, "epochs": epochs}
    return replace(project.nlu.training, **{k: v for k, v in overrides.items() if v is not None})


def _progress(console: Console, total: int, describe: Callable[[EpochReport], str]):
    progress = Progress(
        TextColumn("[bold]epoch"), MofNCompleteColumn(), BarColumn(), TimeElapsedColumn(), TextColumn("{task.description}"),
        console=console,
    )
    task = progress.add_task("", total=total)

    def on_epoch(report: EpochReport) -> None:
        progress.update(task, total=report.epochs, completed=report.epoch, description=describe(report))

    return progress, on_epoch


def _describe_nlu(report: EpochReport) -> str:
    s = report.scores
    mark = " *" if report.best else ""
    return f"loss {report.loss:.3f}  dev intent {s['intent_accuracy']:.3f} slot-F1 {s['slot_f1']:.3f} frame {s['frame_accuracy']:.3f}{mark}"


def train_nlu_command(
    project: Config,
    train_path: Path,
    dev_path: Path | None,
    out: Path,
    init: Path | None,
    *,
    console: Console,
    device: str = "auto",
    seed: int | None = None,
    epochs: int | None = None,
) -> dict[str, float]:
    """Load and validate data, train, save; returns the dev scores of the saved model."""
    from slm.nlu_training import train_nlu

    train = load_examples(train_path)
    if dev_path is not None:
        dev = load_examples(dev_path)
    else:
        train, dev = split_dev(train, project.nlu.dev_share, seed or 0)
    settings = _settings(project, device, seed, epochs)
    progress, on_epoch = _progress(console, settings.epochs, _describe_nlu)
    with progress:
        nlu = train_nlu(train, dev, project.nlu.model, settings, init=init, on_epoch=on_epoch)
    if is_main_process():
        nlu.save(out)
    return nlu.meta["metrics"]["dev"]


def _describe_generator(report: EpochReport) -> str:
    mark = " *" if report.best else ""
    return f"loss {report.loss:.3f}  dev loss {report.scores['dev_loss']:.3f}{mark}"


def train_generator_command(
    pairs: list[DialoguePair],
    dev: list[DialoguePair] | None,
    settings: GeneratorSettings,
    out: Path,
    *,
    console: Console,
    device: str = "auto",
    epochs: int | None = None,
) -> dict[str, float]:
    """Train the reply generator with progress display and save it; without ``dev``, ``dev_share`` of the pairs is held out."""
    from slm.generator import train_generator

    if len(pairs) < 10:
        raise DataError(out, None, f"only {len(pairs)} (context, reply) pairs: the generator needs at least 10")
    if dev is None:
        shuffled = random.Random(settings.training.seed).sample(pairs, len(pairs))
        cut = max(1, int(len(shuffled) * settings.dev_share))
        pairs, dev = shuffled[cut:], shuffled[:cut]
    training = replace(settings.training, device=device, **({"epochs": epochs} if epochs else {}))
    progress, on_epoch = _progress(console, training.epochs, _describe_generator)
    with progress:
        generator = train_generator(pairs, dev, settings.model, training, on_epoch)
    if is_main_process():
        generator.save(out)
    return generator.meta["metrics"]


def pretrain_command(
    project: Config, text: Path, out: Path, *, console: Console, device: str, seed: int | None, epochs: int | None
) -> dict[str, float]:
    """Pre-train the encoder on the lines of ``text``."""
    from slm.pretrain import pretrain

    if not text.is_file():
        raise DataError(text, None, "no such file")
    lines = [line.strip() for line in text.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(lines) < 2:
        raise DataError(text, None, "need at least two non-empty lines of text")
    sizes = project.nlu.model
    settings = _settings(project, device, seed, epochs)
    progress, on_epoch = _progress(console, settings.epochs, lambda r: f"loss {r.loss:.3f}  dev MLM {r.scores['mlm_loss']:.3f}")
    with progress:
        return pretrain(lines, out, sizes, settings, on_epoch)


def retrain_command(
    project: Config, store: ConversationStore, *, console: Console, device: str = "auto", force: bool = False
) -> GateReport | None:
    """`slmbot retrain` with a progress bar over the NLU fine-tuning epochs; None: nothing new to learn."""
    from bot.retrain import retrain_if_new

    progress, on_epoch = _progress(console, project.retrain.epochs, _describe_nlu)
    with progress:
        return retrain_if_new(project, store, device, on_epoch, force)
