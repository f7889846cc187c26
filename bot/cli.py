"""The ``slmbot`` command: thin typer wrappers that parse flags and call library code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from bot.config import ConfigError, load_config
from slm.errors import CheckpointError, DataError

app = typer.Typer(help="Build chatbots on small language models you train yourself.", no_args_is_help=True)
nlu_app = typer.Typer(help="Train, evaluate and query the intent + entity model.", no_args_is_help=True)
app.add_typer(nlu_app, name="nlu")
console = Console(stderr=True)

ConfigOption = Annotated[Path, typer.Option("--config", help="Project configuration file.")]
DeviceOption = Annotated[str, typer.Option(help="auto (CUDA when present), cpu or cuda.")]


def _fail(error: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True, markup=True)
    return typer.Exit(2)


@nlu_app.command("train")
def nlu_train(
    train: Annotated[Path, typer.Option(help="Training data: seq.in/seq.out/label folder, .jsonl, or intents/ folder.")],
    out: Annotated[Path, typer.Option(help="Model directory to write.")],
    dev: Annotated[Optional[Path], typer.Option(help="Dev data (early stopping, calibration); default: 10% of train.")] = None,
    init: Annotated[Optional[Path], typer.Option(help="Start from a `slmbot nlu pretrain` directory.")] = None,
    device: DeviceOption = "auto",
    seed: Annotated[Optional[int], typer.Option(help="Random seed (same seed, same model).")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Maximum epochs.")] = None,
    config: ConfigOption = Path("config.toml"),
) -> None:
    """Train the joint intent classifier + slot filler."""
    from bot.training import train_nlu_command

    try:
        project = load_config(config)
        scores = train_nlu_command(project, train, dev, out, init, device=device, seed=seed, epochs=epochs, console=console)
    except (DataError, CheckpointError, ConfigError, ValueError) as error:
        raise _fail(error) from None
    console.print(f"saved [bold]{out}[/bold]  dev: " + _scores_line(scores))


@nlu_app.command("eval")
def nlu_eval(
    model: Annotated[Path, typer.Option(help="Model directory.")],
    data: Annotated[Path, typer.Option(help="Labelled data in any accepted format.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    oos_label: Annotated[Optional[str], typer.Option(help="Intent name of out-of-scope examples.")] = None,
) -> None:
    """Score a model: intent accuracy, slot F1, frame accuracy (and OOS numbers)."""
    from slm.datasets import load_examples
    from slm.metrics import nlu_scores
    from slm.nlu import NLUModel

    try:
        nlu = NLUModel.load(model)
        examples = load_examples(data)
    except (DataError, CheckpointError) as error:
        raise _fail(error) from None
    predictions = nlu.predict([e.text for e in examples])
    scores = nlu_scores(examples, [p.intent for p in predictions], [p.spans for p in predictions], oos_label)
    if as_json:
        typer.echo(json.dumps(scores))
        return
    table = Table("metric", "value")
    for key, value in scores.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    Console().print(table)


@nlu_app.command("parse")
def nlu_parse(
    text: Annotated[str, typer.Argument(help="The message to parse.")],
    model: Annotated[Path, typer.Option(help="Model directory.")],
) -> None:
    """Print intent, confidence, ranking and entities of one message as JSON."""
    from slm.nlu import NLUModel

    try:
        nlu = NLUModel.load(model)
    except CheckpointError as error:
        raise _fail(error) from None
    typer.echo(json.dumps(nlu.parse(text).to_dict(), ensure_ascii=False, indent=2))


@nlu_app.command("pretrain")
def nlu_pretrain(
    text: Annotated[Path, typer.Option(help="Unlabelled text, one utterance per line.")],
    out: Annotated[Path, typer.Option(help="Directory for the pre-trained encoder.")],
    device: DeviceOption = "auto",
    seed: Annotated[Optional[int], typer.Option()] = None,
    epochs: Annotated[Optional[int], typer.Option()] = None,
    config: ConfigOption = Path("config.toml"),
) -> None:
    """Pre-train tokenizer + encoder with masked-language modelling; fine-tune with `nlu train --init`."""
    from bot.training import pretrain_command

    try:
        metrics = pretrain_command(load_config(config), text, out, device=device, seed=seed, epochs=epochs, console=console)
    except (DataError, ConfigError, ValueError) as error:
        raise _fail(error) from None
    console.print(f"saved [bold]{out}[/bold]  dev MLM loss {metrics['dev_mlm_loss']:.3f}")


@app.command("train")
def train(
    config: ConfigOption = Path("config.toml"),
    device: DeviceOption = "auto",
) -> None:
    """Train everything the project needs (the NLU model) into the models folder."""
    from bot.training import train_nlu_command

    try:
        project = load_config(config)
        out = project.nlu_model_dir
        scores = train_nlu_command(project, project.nlu.data, None, out, None, device=device, console=console)
    except (DataError, ConfigError, ValueError) as error:
        raise _fail(error) from None
    console.print(f"saved [bold]{out}[/bold]  dev: " + _scores_line(scores))


@app.command("run")
def run(
    config: ConfigOption = Path("config.toml"),
    host: Annotated[Optional[str], typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[Optional[int], typer.Option(help="TCP port.")] = None,
    model: Annotated[Optional[Path], typer.Option(help="NLU model directory (default: models/nlu).")] = None,
) -> None:
    """Serve the NLU parse API (POST /model/parse)."""
    import uvicorn

    from bot.server import create_app
    from slm.nlu import NLUModel

    try:
        project = load_config(config)
        model_dir = model or project.nlu_model_dir
        if not (model_dir / "checkpoint.json").exists():
            raise _fail(ValueError(f"no trained model at {model_dir}: run `slmbot train` first"))
        nlu = NLUModel.load(model_dir)
    except (ConfigError, CheckpointError) as error:
        raise _fail(error) from None
    uvicorn.run(create_app(nlu), host=host or project.server.host, port=port or project.server.port)


def _scores_line(scores: dict[str, float]) -> str:
    keys = ("intent_accuracy", "slot_f1", "frame_accuracy")
    return "  ".join(f"{k} {scores[k]:.4f}" for k in keys if k in scores)


def main() -> None:
    """Console-script entry point."""
    app()
