"""`slmbot retrain`: learn from the logged conversations, and go live only when no worse.

1. Training data: the project's examples plus every annotated message (redacted), new intents
   and entity types included; optionally high-confidence unannotated messages.
2. The candidate is the live model fine-tuned (`slm.warm_start`): its weights, tokenizer and
   label rows carry over, new labels get new rows.
3. The gate evaluates live model and candidate on the same held-out data: the project's dev
   split (also used for early stopping and calibration), a hold-out of the annotated examples
   (never trained on) and the conversation tests. The candidate is registered and promoted
   (running servers switch to it) only when none of its scores is more than ``margin`` below
   the live model's; otherwise it is discarded and the report says why.

With ``[generator] enabled``, the reply generator is fine-tuned the same way (its pieces and
weights kept) on the templates, agent replies and reviewers' better replies, and judged with
the NLU candidate by its loss on held-out pairs; both go live together or not at all.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from bot.annotation import uncertainty
from bot.config import Config
from bot.confusion import confusion, save_confusion_png
from bot.conversation_tests import load_tests, run_in_scratch
from bot.domain import load_valid_domain
from bot.export import latest_labels
from bot.generator_data import agent_pairs, annotated_reply_pairs, template_pairs
from bot.privacy import Redactor, redact_event
from bot.registry import promote, register
from bot.runtime import BotRuntime
from bot.storage.store import ConversationStore
from bot.trained_models import model_version
from bot.understanding import parse_payload
from slm.datasets import load_examples, split_dev
from slm.dialogue_corpora import DialoguePair
from slm.examples import Example, Span
from slm.generator import Generator, train_generator
from slm.metrics import nlu_scores
from slm.nlu import NLUModel
from slm.nlu_training import data_fingerprint, train_nlu
from slm.train import EpochReport

NLU_METRICS = ("intent_accuracy", "slot_f1")
LAST_RUN = "last-retrain.json"


@dataclass
class GateReport:
    """Scores of both models per evaluation suite, and the verdict."""

    live_version: str
    candidate_version: str
    scores: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)  # suite -> metric -> (live, candidate)
    sizes: dict[str, int] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    new_intents: list[str] = field(default_factory=list)
    confusion_png: str | None = None  # the candidate's intent confusion matrix on the held-out examples

    @property
    def promoted(self) -> bool:
        return not self.reasons

    def to_dict(self) -> dict[str, object]:
        return {
            "live": self.live_version, "candidate": self.candidate_version, "promoted": self.promoted, "reasons": self.reasons,
            "new_intents": self.new_intents, "sizes": self.sizes, "confusion_png": self.confusion_png,
            "scores": {s: {m: {"live": a, "candidate": b} for m, (a, b) in ms.items()} for s, ms in self.scores.items()},
        }


def judge(report: GateReport, margin: float) -> None:
    """Fill ``report.reasons`` with every score where the candidate is more than ``margin`` worse."""
    for suite, metrics in report.scores.items():
        for metric, (live, candidate) in metrics.items():
            if candidate < live - margin:
                report.reasons.append(f"{suite}: {metric} {candidate:.4f} < live {live:.4f} - margin {margin}")


def annotated_examples(store: ConversationStore) -> list[Example]:
    """Every annotated message as a labelled example (annotations are stored redacted)."""
    return [
        Example(a.text, a.intent or "", tuple(Span(e["start"], e["end"], e["entity"]) for e in a.entities or []), origin=f"annotation {a.id}")
        for a in latest_labels(store)
    ]


def pseudo_labelled(store: ConversationStore, redactor: Redactor, confidence: float, exclude: set[str]) -> list[Example]:
    """Unannotated messages the live model was sure of, as it parsed them."""
    examples = []
    for event in store.unannotated_user_messages(100_000):
        if not event.text or parse_payload(event.text) or event.confidence is None or event.confidence < confidence or uncertainty(event) > 0.5:
            continue
        redact_event(event, redactor)
        if event.text not in exclude:
            spans = tuple(Span(e["start"], e["end"], e["entity"]) for e in event.entities if e.get("extractor") == "model")
            examples.append(Example(event.text, event.intent or "", spans, origin=f"event {event.id}"))
    return examples


def save_confusion(model: NLUModel, examples: list[Example], folder: Path, version: str) -> Path:
    """Draw the candidate's intent confusions on the held-out examples; the file's path."""
    labels, matrix = confusion([e.intent for e in examples], [p.intent for p in model.predict([e.text for e in examples])])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{version}-confusion.png"
    save_confusion_png(labels, matrix, f"candidate {version}: right intent (rows) vs predicted", path)
    return path


def nlu_suite(model: NLUModel, examples: list[Example]) -> dict[str, float]:
    predictions = model.predict([e.text for e in examples])
    scores = nlu_scores(examples, [p.intent for p in predictions], [p.spans for p in predictions])
    return {metric: scores[metric] for metric in NLU_METRICS}


def conversation_pass_rate(config: Config, model_dir: Path, tests_dir: Path) -> float:
    """Share of the project's conversation tests that pass with the model in ``model_dir``."""
    def load(database_url: str, data_dir: Path) -> BotRuntime:
        return BotRuntime.load(config, model_dir=model_dir, database_url=database_url, data_dir=data_dir, seed=0, redis_url="")

    outcomes = run_in_scratch(load, load_tests(tests_dir))
    return sum(o.passed for o in outcomes) / max(len(outcomes), 1)


def generator_pairs(config: Config, store: ConversationStore) -> tuple[list[DialoguePair], list[DialoguePair]] | None:
    """Training and held-out reply pairs: templates, agent replies and reviewers' better replies
    (redacted); None when the generator is off."""
    if not config.generator.enabled:
        return None
    redactor = Redactor(config.privacy.patterns)
    domain = load_valid_domain(config.root, config.nlu.data, config.dialogue)
    pairs = template_pairs(domain) + agent_pairs(store, redactor) + annotated_reply_pairs(store, redactor)
    random.Random(config.retrain.seed).shuffle(pairs)
    cut = max(1, round(len(pairs) * config.generator.dev_share))
    return pairs[cut:], pairs[:cut]


@dataclass
class RetrainInputs:
    """Everything a retraining run learns from and is judged on, gathered before any training."""

    live_dir: Path
    project_train: list[Example]
    project_dev: list[Example]
    annotated_train: list[Example]
    holdout: list[Example]
    pseudo_labelled: list[Example]
    replies: tuple[list[DialoguePair], list[DialoguePair]] | None
    generator_dir: Path | None

    def fingerprint(self) -> str:
        """SHA-256 of all the data (not of the live models: after a promotion, or a rollback a
        person chose, the same data is no reason to train again)."""
        digest = hashlib.sha256()
        for part in (self.project_train, self.project_dev, self.annotated_train, self.holdout, self.pseudo_labelled):
            digest.update(data_fingerprint(part).encode())
        for pairs in self.replies or ():
            digest.update(repr([(p.context, p.response) for p in pairs]).encode())
        return digest.hexdigest()


def gather(config: Config, store: ConversationStore) -> RetrainInputs:
    """The live models' folders and the data a retraining run would use now."""
    settings = config.retrain
    project_train, project_dev = split_dev(load_examples(config.nlu.data), config.nlu.dev_share, 0)
    annotated_train, holdout = split_dev(annotated_examples(store), settings.holdout_share, settings.seed)
    extra = []
    if settings.pseudo_labels:
        known = {e.text for e in project_train + annotated_train + holdout}
        extra = pseudo_labelled(store, Redactor(config.privacy.patterns), settings.pseudo_label_confidence, known)
    return RetrainInputs(
        live_folder(store, "nlu", config.nlu_model_dir),
        project_train, project_dev, annotated_train, holdout, extra,
        generator_pairs(config, store),
        live_folder(store, "generator", config.generator_model_dir) if config.generator.enabled else None,
    )


def live_folder(store: ConversationStore, kind: str, live_copy: Path) -> Path:
    """Where the registry's live version of ``kind`` lives (the live copy for a project without one)."""
    record = store.active_model(kind)
    return Path(record.path) if record is not None else live_copy


def retrain(
    config: Config,
    store: ConversationStore,
    device: str = "auto",
    on_epoch: Callable[[EpochReport], None] | None = None,
    inputs: RetrainInputs | None = None,
) -> GateReport:
    """Train a candidate, gate it against the live model, promote it when it passes."""
    settings = config.retrain
    inputs = inputs or gather(config, store)
    live_dir, project_train, project_dev = inputs.live_dir, inputs.project_train, inputs.project_dev
    annotated_train, holdout, extra = inputs.annotated_train, inputs.holdout, inputs.pseudo_labelled
    live = NLUModel.load(live_dir)
    training = replace(config.nlu.training, epochs=settings.epochs, lr=settings.lr, ema=settings.ema, seed=settings.seed, device=device)
    # Annotated examples are few and were chosen because the model got them wrong: weigh them up.
    weighted = annotated_train * settings.annotation_weight
    candidate = train_nlu(
        project_train + weighted + extra, project_dev, config.nlu.model, training,
        on_epoch=on_epoch, parent=live, new_pieces=settings.new_pieces, distill=settings.distill,
    )
    generators = None
    if inputs.replies is not None and inputs.generator_dir is not None:
        live_generator = Generator.load(inputs.generator_dir)
        reply_settings = replace(config.generator.training, seed=settings.seed, device=device)
        reply_train, reply_dev = inputs.replies
        generators = live_generator, train_generator(reply_train, reply_dev, settings=reply_settings, parent=live_generator), reply_dev

    staging = config.models_dir / "registry" / f".candidate-{uuid.uuid4().hex[:8]}"
    generator_staging = staging.with_name(staging.name + "-generator")
    candidate.save(staging)
    try:
        report = GateReport(model_version(live_dir), model_version(staging))
        report.new_intents = sorted(set(candidate.intents) - set(live.intents))
        report.sizes = {"train": len(project_train) + len(annotated_train) + len(extra), "pseudo_labelled": len(extra),
                        "project dev": len(project_dev), "annotated hold-out": len(holdout)}
        suites = {"project dev": project_dev, "annotated hold-out": holdout}
        for suite, examples in suites.items():
            if examples:
                before, after = nlu_suite(live, examples), nlu_suite(candidate, examples)
                report.scores[suite] = {m: (before[m], after[m]) for m in NLU_METRICS}
        report.confusion_png = str(save_confusion(candidate, project_dev + holdout, config.models_dir / "reports", report.candidate_version))
        tests_dir = config.root / "tests" / "conversations"
        if tests_dir.is_dir():
            rates = conversation_pass_rate(config, live_dir, tests_dir), conversation_pass_rate(config, staging, tests_dir)
            report.scores["conversation tests"] = {"pass_rate": rates}
        if generators is not None:
            live_generator, new_generator, pairs = generators
            # Higher is better for the gate: the negated loss per reply on the held-out pairs.
            report.scores["generator hold-out"] = {"neg_loss": (-live_generator.loss(pairs), -new_generator.loss(pairs))}
            report.sizes["generator hold-out"] = len(pairs)
            new_generator.save(generator_staging)
        judge(report, settings.margin)
        if report.promoted:
            register(store, "nlu", staging, config.models_dir)
            promote(store, "nlu", report.candidate_version, config.nlu_model_dir)
            if generators is not None:
                version = register(store, "generator", generator_staging, config.models_dir).version
                promote(store, "generator", version, config.generator_model_dir)
        return report
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(generator_staging, ignore_errors=True)


def retrain_if_new(
    config: Config,
    store: ConversationStore,
    device: str = "auto",
    on_epoch: Callable[[EpochReport], None] | None = None,
    force: bool = False,
) -> GateReport | None:
    """`retrain`, unless the data is what the last run had (then None): cron can call it hourly.

    The last run's fingerprint and report are kept in ``models/reports/last-retrain.json``;
    ``force`` trains regardless.
    """
    inputs = gather(config, store)
    fingerprint = inputs.fingerprint()
    record = config.models_dir / "reports" / LAST_RUN
    if not force and record.is_file() and json.loads(record.read_text(encoding="utf-8")).get("fingerprint") == fingerprint:
        return None
    report = retrain(config, store, device, on_epoch, inputs)
    record.parent.mkdir(parents=True, exist_ok=True)
    at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    record.write_text(json.dumps({"fingerprint": fingerprint, "at": at, "report": report.to_dict()}, indent=2), encoding="utf-8")
    return report
