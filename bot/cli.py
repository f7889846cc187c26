"""The ``slmbot`` command: thin typer wrappers that parse flags and call library code."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from bot.config import ConfigError, load_config
from slm.errors import CheckpointError, DataError

if TYPE_CHECKING:
    from bot.retrain import GateReport

app = typer.Typer(help="Build chatbots on small language models you train yourself.", no_args_is_help=True)


def _group(name: str, summary: str) -> typer.Typer:
    """A sub-command group such as ``slmbot nlu ...``."""
    group = typer.Typer(help=summary, no_args_is_help=True)
    app.add_typer(group, name=name)
    return group


nlu_app = _group("nlu", "Train, evaluate and query the intent + entity model.")
gen_app = _group("gen", "Train, evaluate and query the seq2seq reply generator.")
models_app = _group("models", "The model registry: every trained version, which one is live.")
logs_app = _group("logs", "Retention of the conversation logs.")
telegram_app = _group("telegram", "Set up the Telegram channel.")
admin_app = _group("admin", "Accounts of the review pages (/admin).")
console = Console(stderr=True)

ConfigOption = Annotated[Path, typer.Option("--config", help="Project configuration file.")]
DeviceOption = Annotated[str, typer.Option(help="auto (CUDA when present), cpu or cuda.")]


@contextmanager
def _exit_on(*errors: type[Exception]) -> Iterator[None]:
    """Turn the expected failures of a command into its message and exit code 2."""
    try:
        yield
    except errors as error:
        raise _fail(error) from None


def _fail(error: Exception) -> typer.Exit:
    # Escaped: messages name config sections like [privacy], which are not markup.
    console.print(f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True, markup=True)
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
    _print_scores(scores, as_json)


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
    """Check the project, train what it needs (NLU; the generator when enabled), record the models in the database."""
    from bot.domain import DomainError, load_valid_domain
    from bot.registry import register
    from bot.trained_models import model_version
    from bot.storage.store import ConversationStore, StorageUnavailable
    from bot.training import train_nlu_command

    try:
        project = load_config(config)
        domain = load_valid_domain(project.root, project.nlu.data, project.dialogue)
        out = project.nlu_model_dir
        scores = train_nlu_command(project, project.nlu.data, None, out, None, device=device, console=console)
        store = ConversationStore(project.database_url)
        store.migrate()
        register(store, "nlu", out, project.models_dir)
        console.print(f"saved [bold]{out}[/bold] (version {model_version(out)})  dev: " + _scores_line(scores))
        if project.generator.enabled:
            from bot.generator_data import agent_pairs, template_pairs
            from bot.privacy import Redactor
            from bot.training import train_generator_command

            pairs = template_pairs(domain) + agent_pairs(store, Redactor(project.privacy.patterns))
            generator_dir = project.generator_model_dir
            metrics = train_generator_command(pairs, None, project.generator, generator_dir, console=console, device=device)
            register(store, "generator", generator_dir, project.models_dir)
            console.print(f"saved [bold]{generator_dir}[/bold] ({len(pairs)} pairs)  dev loss {metrics['dev_loss']:.3f}")
    except (DataError, ConfigError, DomainError, StorageUnavailable, ValueError) as error:
        raise _fail(error) from None


REJECTED_EXIT = 3
"""`slmbot retrain`'s exit status when the gate kept the live model (cron mails it; 0 otherwise)."""


@app.command("retrain")
def retrain_command(
    config: ConfigOption = Path("config.toml"),
    device: DeviceOption = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Print the gate report as one JSON object.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Train even when the data is what the last run had.")] = False,
    every: Annotated[Optional[str], typer.Option(help="Keep running: retrain every interval (e.g. 30m, 6h, 1d).")] = None,
) -> None:
    """Fine-tune the live model on intents/ plus annotated logs; promote it only if the gate passes.

    Cron-friendly: a run whose data is what the last run had does nothing; the exit status is
    0 when a candidate was promoted or nothing was new, 3 when the gate rejected the candidate.
    """
    from bot.domain import DomainError
    from bot.storage.store import StorageUnavailable
    from bot.training import retrain_command as run_retrain

    interval = _interval_seconds(every) if every is not None else None
    with _exit_on(ConfigError, StorageUnavailable, DataError, DomainError, CheckpointError):
        project, store = _project_store(config)
    while True:
        try:
            report = run_retrain(project, store, console=console, device=device, force=force)
        except (StorageUnavailable, DataError, DomainError, CheckpointError) as error:
            if interval is None:
                raise _fail(error) from None
            console.print(f"[red]retrain failed:[/red] {escape(str(error))}; next try in {every}", markup=True)
        else:
            _print_retrain(report, as_json)
            if interval is None:
                if report is not None and not report.promoted:
                    raise typer.Exit(REJECTED_EXIT)
                return
        time.sleep(interval)


def _interval_seconds(text: str) -> float:
    """'90s', '30m', '6h', '1d' -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        seconds = float(text[:-1]) * units[text[-1]]
    except (KeyError, ValueError, IndexError):
        raise typer.BadParameter(f"'{text}' is not an interval like 90s, 30m, 6h or 1d", param_hint="--every") from None
    if seconds <= 0:
        raise typer.BadParameter("the interval must be positive", param_hint="--every")
    return seconds


def _print_retrain(report: GateReport | None, as_json: bool) -> None:
    """The gate report as a table (or JSON); a line when nothing was new."""
    if report is None:
        if as_json:
            typer.echo(json.dumps({"skipped": True, "reason": "the data is what the last run had"}))
        else:
            console.print("nothing new since the last retrain (same data); --force trains anyway")
        return
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
        return
    table = Table("suite", "metric", "live", "candidate")
    for suite, metrics in report.scores.items():
        for metric, (live, candidate) in metrics.items():
            table.add_row(f"{suite} ({report.sizes.get(suite, '')})" if suite in report.sizes else suite, metric, f"{live:.4f}", f"{candidate:.4f}")
    out = Console()
    out.print(table)
    if report.new_intents:
        out.print(f"new intents: {', '.join(report.new_intents)}")
    out.print(f"confusion matrix: {report.confusion_png}", markup=False)
    if report.promoted:
        when = escape("[server] model_poll_seconds")
        out.print(f"[green]promoted[/green] {report.candidate_version} (was {report.live_version}); running servers switch to it within {when}")
    else:
        out.print(f"[red]rejected[/red] {report.candidate_version}; {report.live_version} stays live:", markup=True)
        for reason in report.reasons:
            out.print(f"  {reason}", markup=False)


@app.command("check")
def check(config: ConfigOption = Path("config.toml")) -> None:
    """Validate intents, flows, responses, actions and config; print every problem as file:line: message."""
    from bot.domain import load_domain

    try:
        project = load_config(config)
    except ConfigError as error:
        raise _fail(error) from None
    domain, problems = load_domain(project.root, project.nlu.data, project.dialogue)
    for problem in problems:
        colour = "red" if problem.error else "yellow"
        console.print(f"[{colour}]{problem}[/{colour}]", highlight=False, soft_wrap=True)
    errors = sum(p.error for p in problems)
    summary = f"{len(domain.intents)} intents, {len(domain.examples)} examples, {len(domain.flows)} flows, {len(domain.responses)} responses"
    if errors:
        console.print(f"[red]{errors} error(s)[/red]; {summary}")
        raise typer.Exit(1)
    console.print(f"[green]ok[/green]: {summary}")


@app.command("init")
def init(directory: Annotated[Path, typer.Argument(help="Folder for the new bot project (must not exist or be empty).")]) -> None:
    """Create a new bot project that trains and runs: config, intents, a flow, an action and a test."""
    from bot.scaffold import create_project

    try:
        created = create_project(directory)
    except FileExistsError as error:
        raise _fail(error) from None
    console.print(f"created {len(created)} files in [bold]{directory}[/bold]; next: cd {directory} && slmbot train && slmbot shell")


@gen_app.command("train")
def gen_train(
    train: Annotated[Path, typer.Option(help="CamRest676 or Taskmaster-4 folder, or a .jsonl of {context, response}.")],
    out: Annotated[Path, typer.Option(help="Model directory to write.")],
    dev: Annotated[Optional[Path], typer.Option(help="Dev pairs (default: the corpus's dev split, or 10% of a .jsonl).")] = None,
    no_attention: Annotated[bool, typer.Option("--no-attention", help="The ablation: no attention, no copy.")] = False,
    device: DeviceOption = "auto",
    epochs: Annotated[Optional[int], typer.Option(help="Maximum epochs.")] = None,
    config: ConfigOption = Path("config.toml"),
) -> None:
    """Train the reply generator on dialogue pairs."""
    from dataclasses import replace

    from bot.training import train_generator_command
    from slm.dialogue_corpora import load_pairs

    try:
        project = load_config(config)
        settings = project.generator
        if no_attention:
            settings = replace(settings, model=replace(settings.model, attention=False, copy=False))
        pairs = load_pairs(train, "train")
        dev_pairs = load_pairs(dev or train, "dev") if dev is not None or train.suffix != ".jsonl" else None
        metrics = train_generator_command(pairs, dev_pairs, settings, out, console=console, device=device, epochs=epochs)
    except (DataError, ConfigError, ValueError) as error:
        raise _fail(error) from None
    console.print(f"saved [bold]{out}[/bold]  dev loss {metrics['dev_loss']:.3f}")


@gen_app.command("eval")
def gen_eval(
    model: Annotated[Path, typer.Option(help="Generator directory.")],
    data: Annotated[Path, typer.Option(help="Corpus folder or .jsonl.")],
    split: Annotated[str, typer.Option(help="Corpus split (train, dev, test).")] = "test",
    beam: Annotated[int, typer.Option(help="Beam width (1 = greedy).")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Score replies: corpus BLEU, entity-value accuracy and wrong-value rate."""
    from slm.dialogue_corpora import load_pairs
    from slm.generator import Generator
    from slm.metrics import corpus_bleu, value_scores

    try:
        generator = Generator.load(model)
        pairs = load_pairs(data, split)
    except (DataError, CheckpointError, ValueError) as error:
        raise _fail(error) from None
    replies = [g.text for g in generator.generate([p.context for p in pairs], beam=beam)]
    scores = {"bleu": corpus_bleu(replies, [p.response for p in pairs]), **value_scores(pairs, replies), "n": len(pairs)}
    _print_scores(scores, as_json)


@gen_app.command("generate")
def gen_generate(
    context: Annotated[str, typer.Argument(help="The conversation so far, one 'user: ...' / 'bot: ...' line per turn.")],
    model: Annotated[Path, typer.Option(help="Generator directory.")],
    beam: Annotated[int, typer.Option(help="Beam width (1 = greedy).")] = 4,
) -> None:
    """Print a generated reply and its score (mean log-probability per piece) as JSON."""
    from slm.generator import Generator

    try:
        generator = Generator.load(model)
    except CheckpointError as error:
        raise _fail(error) from None
    result = generator.generate([context.replace("\\n", "\n")], beam=beam)[0]
    typer.echo(json.dumps({"text": result.text, "score": result.score}, ensure_ascii=False))


def _runtime(config: Path, model: Path | None = None, serving: bool = False, **overrides):
    """Load the bot for serving (parsing in a child process where ``[server] parse_process`` says
    so) or chatting, turning every setup problem into a clear exit."""
    from bot.domain import DomainError
    from bot.parse_process import ParseProcessError
    from bot.runtime import BotRuntime
    from bot.trained_models import ModelMissing
    from bot.storage.store import StorageUnavailable

    try:
        project = load_config(config)
        return BotRuntime.load(project, model_dir=model, parse_in_child=serving and project.server.parse_process, **overrides)
    except (ConfigError, DomainError, ModelMissing, CheckpointError, ParseProcessError, StorageUnavailable) as error:
        raise _fail(error) from None


@app.command("shell")
def shell(
    config: ConfigOption = Path("config.toml"),
    debug: Annotated[bool, typer.Option(help="Show intent, confidence and entities of each message.")] = False,
    sender: Annotated[str, typer.Option(help="Conversation id to use (continue one by reusing it).")] = "me",
    model: Annotated[Optional[Path], typer.Option(help="NLU model directory (default: models/nlu).")] = None,
) -> None:
    """Chat with the bot in the terminal (stored like any other conversation)."""
    import asyncio

    from bot.shell import chat

    asyncio.run(chat(_runtime(config, model), Console(), sender, debug))


@app.command("test")
def test(
    config: ConfigOption = Path("config.toml"),
    path: Annotated[Path, typer.Option(help="Folder of conversation tests.")] = Path("tests/conversations"),
    verbose: Annotated[bool, typer.Option(help="Print the transcript of every test, not only failing ones.")] = False,
    model: Annotated[Optional[Path], typer.Option(help="NLU model directory (default: models/nlu).")] = None,
) -> None:
    """Run the end-to-end conversation tests; exit 1 when any fails."""
    from bot.conversation_tests import load_tests, run_in_scratch

    with _exit_on(DataError):
        tests = load_tests(path)
    outcomes = run_in_scratch(lambda url, data: _runtime(config, model, database_url=url, data_dir=data, seed=0), tests)
    out = Console(soft_wrap=True, highlight=False)
    table = Table("result", "test", "where")
    for outcome in outcomes:
        mark = "[green]pass[/green]" if outcome.passed else "[red]FAIL[/red]"
        table.add_row(mark, outcome.test.name, f"{outcome.test.path.name}:{outcome.test.line}")
        if verbose or not outcome.passed:
            out.print(f"{mark} [bold]{outcome.test.name}[/bold]")
            if outcome.failure:
                out.print(outcome.failure, markup=False)
            for line in outcome.transcript:
                out.print(f"  {line}", markup=False)
    out.print(table)
    failed = sum(not o.passed for o in outcomes)
    out.print(f"{len(outcomes) - failed}/{len(outcomes)} conversation tests passed")
    if failed:
        raise typer.Exit(1)


@app.command("run")
def run(
    config: ConfigOption = Path("config.toml"),
    host: Annotated[Optional[str], typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[Optional[int], typer.Option(help="TCP port.")] = None,
    model: Annotated[Optional[Path], typer.Option(help="NLU model directory (default: models/nlu).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes (more than 1 needs REDIS_URL and PostgreSQL).")] = 1,
    telegram_polling: Annotated[bool, typer.Option(help="Also serve Telegram by long polling (development).")] = False,
    data_dir: Annotated[Optional[Path], typer.Option(help="Folder for the project's own data (default: [project] data_dir).")] = None,
) -> None:
    """Serve the bot: web widget and demo page, REST and Telegram channels, parse API, handoff, /metrics.

    DATABASE_URL and REDIS_URL override config.toml.
    """
    from bot.serve import ServeOptions, check_scale_out, serve

    runtime = _runtime(config, model, serving=True, data_dir=data_dir)
    settings = runtime.config.server
    options = ServeOptions(config, host or settings.host, port or settings.port, workers, model, telegram_polling, data_dir)
    with _exit_on(ConfigError):
        check_scale_out(options, runtime.config.redis_url, runtime.store.url)
        code = serve(runtime, options)
    raise typer.Exit(code)


KindOption = Annotated[str, typer.Option(help="nlu or generator.")]


def _project_store(config: Path):
    """The project's configuration and its migrated conversation store."""
    from bot.storage.store import ConversationStore

    project = load_config(config)
    store = ConversationStore(project.database_url)
    store.migrate()
    return project, store


@models_app.command("list")
def models_list(config: ConfigOption = Path("config.toml"), kind: KindOption = "nlu", as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Every recorded version, newest first: live mark, parent, training-data hash, dev scores."""
    from bot.storage.store import StorageUnavailable

    with _exit_on(ConfigError, StorageUnavailable):
        versions = _project_store(config)[1].models(kind)
    rows = [
        {"version": m.version, "live": m.active, "created": m.created_at.isoformat(timespec="seconds"), "parent": m.parent,
         "data_hash": (m.data_hash or "")[:12], "dev": m.metrics.get("dev", {})}
        for m in versions
    ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table(Column("version", min_width=12, no_wrap=True), "live", "created", "parent", "data", "dev intent", "dev slot F1")
    for row in rows:
        dev = row["dev"]
        table.add_row(row["version"], "*" if row["live"] else "", row["created"][:10], row["parent"] or "", row["data_hash"],
                      f"{dev['intent_accuracy']:.4f}" if "intent_accuracy" in dev else "", f"{dev['slot_f1']:.4f}" if "slot_f1" in dev else "")
    Console().print(table)


@models_app.command("promote")
def models_promote(version: Annotated[str, typer.Argument(help="A version from `slmbot models list`.")],
                   config: ConfigOption = Path("config.toml"), kind: KindOption = "nlu") -> None:
    """Make VERSION live; running servers switch to it within [server] model_poll_seconds."""
    from bot.registry import RegistryError, promote
    from bot.storage.store import StorageUnavailable

    with _exit_on(ConfigError, StorageUnavailable, RegistryError):
        project, store = _project_store(config)
        promote(store, kind, version, project.models_dir / kind)
    typer.echo(f"{kind} version {version} is live")


@models_app.command("rollback")
def models_rollback(config: ConfigOption = Path("config.toml"), kind: KindOption = "nlu") -> None:
    """Make the version that was live before the current one live again."""
    from bot.registry import RegistryError, rollback
    from bot.storage.store import StorageUnavailable

    with _exit_on(ConfigError, StorageUnavailable, RegistryError):
        project, store = _project_store(config)
        record = rollback(store, kind, project.models_dir / kind)
    typer.echo(f"{kind} version {record.version} is live again")


@logs_app.command("purge")
def logs_purge(
    config: ConfigOption = Path("config.toml"),
    days: Annotated[Optional[float], typer.Option(help="Idle for more than this many days (default: [privacy] retention_days).")] = None,
    anonymize: Annotated[Optional[bool], typer.Option("--anonymize/--delete", help="Default: [privacy] retention.")] = None,
) -> None:
    """Delete (or anonymize) conversations idle longer than the retention period; cron-friendly."""
    from bot.privacy import Redactor
    from bot.retention import purge
    from bot.storage.store import StorageUnavailable

    with _exit_on(ConfigError, StorageUnavailable):
        project, store = _project_store(config)
        period = project.privacy.retention_days if days is None else days
        if period <= 0:
            raise ConfigError("no retention period: pass --days N or set [privacy] retention_days")
        keep = project.privacy.retention == "anonymize" if anonymize is None else anonymize
        count = purge(store, period, keep, Redactor(project.privacy.patterns))
    typer.echo(f"{'anonymized' if keep else 'deleted'} {count} conversation(s) idle for more than {period:g} days")


@app.command("export")
def export(
    out: Annotated[Path, typer.Option(help="JSONL file to write (NLU training format).")],
    config: ConfigOption = Path("config.toml"),
    everything: Annotated[bool, typer.Option("--all", help="Also unannotated messages, labelled by the live model.")] = False,
) -> None:
    """Write annotated examples from the logs, personal data redacted, as NLU JSONL."""
    from bot.export import export_examples
    from bot.privacy import Redactor
    from bot.storage.store import StorageUnavailable

    with _exit_on(ConfigError, StorageUnavailable, OSError):
        project, store = _project_store(config)
        with out.open("w", encoding="utf-8") as file:
            count = export_examples(store, Redactor(project.privacy.patterns), file, everything)
    typer.echo(f"wrote {count} example(s) to {out}")


@app.command("import")
def import_(
    path: Annotated[Path, typer.Argument(help="JSONL of labelled examples (as `slmbot export` writes).")],
    config: ConfigOption = Path("config.toml"),
    author: Annotated[str, typer.Option(help="Recorded as the annotator.")] = "import",
) -> None:
    """Store labelled examples as annotations (redacted; all or none); `slmbot export` gives them back."""
    from bot.export import import_examples
    from bot.privacy import Redactor
    from bot.storage.store import StorageUnavailable

    with _exit_on(ConfigError, StorageUnavailable, OSError, DataError):
        project, store = _project_store(config)
        count = import_examples(path, author, Redactor(project.privacy.patterns), store)
    typer.echo(f"imported {count} example(s) from {path}")


@admin_app.command("hash-password")
def admin_hash_password(
    name: Annotated[str, typer.Argument(help="The account's name (recorded as the author of annotations and replies).")],
) -> None:
    """Print NAME=HASH for SLMBOT_ADMIN_USERS (comma-separated); the password is asked for, not echoed."""
    from bot.admin.auth import hash_password

    password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    typer.echo(f"{name}={hash_password(password)}")


@telegram_app.command("set-webhook")
def telegram_set_webhook(
    url: Annotated[str, typer.Argument(help="Public HTTPS URL of this server's /webhooks/telegram route.")],
    config: ConfigOption = Path("config.toml"),
) -> None:
    """Tell Telegram to send updates to URL, signed with TELEGRAM_WEBHOOK_SECRET (token: TELEGRAM_BOT_TOKEN)."""
    import asyncio

    from telegram.error import TelegramError

    from bot.channels.telegram import set_webhook

    with _exit_on(ConfigError, TelegramError):
        asyncio.run(set_webhook(load_config(config).telegram, url))
    typer.echo(f"webhook set: {url}")


def _print_scores(scores: dict[str, float], as_json: bool) -> None:
    """One JSON object, or a metric/value table."""
    if as_json:
        typer.echo(json.dumps(scores))
        return
    table = Table("metric", "value")
    for key, value in scores.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    Console().print(table)


def _scores_line(scores: dict[str, float]) -> str:
    keys = ("intent_accuracy", "slot_f1", "frame_accuracy")
    return "  ".join(f"{k} {scores[k]:.4f}" for k in keys if k in scores)


def main() -> None:
    """Console-script entry point."""
    app()
