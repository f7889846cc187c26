"""Train an `NLUModel` from labelled examples: vocabularies, model, the loop, calibration."""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import torch

from slm.augment import EntitySwap
from slm.calibration import expected_calibration_error, fit_temperature
from slm.errors import DataError
from slm.examples import AlignmentError, Example, spans_to_bio
from slm.features import CharVocab
from slm.joint import EncoderConfig, JointConfig, JointModel
from slm.metrics import nlu_scores
from slm.nlu import NLUModel
from slm.pretrain import load_pretrained_encoder
from slm.settings import ModelSizes, TrainSettings
from slm.tokenizer import Encoding, Tokenizer
from slm.train import EpochReport, fit, from_main, join_world, resolve_device, seed_everything
from slm.vocab_growth import grow_tokenizer, shattered_words
from slm.warm_start import encoder_config as encoder_config_of
from slm.warm_start import imprint_new_intents, parent_targets, warm_start


@dataclass
class Encoded:
    """One training example tokenized (once), or a variant of it drawn for an epoch."""

    example: Example
    """What was encoded: a training example, or a variant of it (`slm.augment`)."""
    source: str
    """The training example's text (a variant's original): the key of its distillation target."""
    encoding: Encoding
    intent: int
    tags: list[int]


class ExampleEncoder:
    """Examples -> `Encoded` items, with the tokenizer and the label ids of one model."""

    def __init__(self, tokenizer: Tokenizer, intents: list[str], tags: list[str]) -> None:
        self.tokenizer = tokenizer
        self.intent_ids = {name: i for i, name in enumerate(intents)}
        self.tag_ids = {name: i for i, name in enumerate(tags)}

    def __call__(self, example: Example, source: str | None = None) -> Encoded:
        """``example`` tokenized and tagged (``source``: its original's text when it is a variant).

        Raises:
            AlignmentError: a span the tokenizer's words cannot express.
        """
        encoding = self.tokenizer.encode(example.text)
        bio = spans_to_bio(example.spans, encoding.words)
        tags = [self.tag_ids[t] for t in bio]
        return Encoded(example, source or example.text, encoding, self.intent_ids[example.intent], tags)

    def all(self, examples: Sequence[Example]) -> list[Encoded]:
        """Every example encoded, failing on the first span the tokenizer cannot express.

        Raises:
            DataError: naming the example's origin.
        """
        encoded = []
        for index, example in enumerate(examples, start=1):
            try:
                encoded.append(self(example))
            except AlignmentError as error:
                raise DataError(example.origin or f"example {index}", None, str(error)) from None
        return encoded

    def variants(self, items: Sequence[Encoded], swap: EntitySwap) -> list[Encoded]:
        """Each item, or a variant with other entity values (`slm.augment`); a variant whose
        spans the tokenizer's words cannot express (a value glued to punctuation) keeps the original."""
        drawn = []
        for item in items:
            variant = swap(item.example)
            try:
                drawn.append(item if variant is item.example else self(variant, item.source))
            except AlignmentError:
                drawn.append(item)
        return drawn


def tag_names(examples: Sequence[Example]) -> list[str]:
    """``O`` plus ``B-``/``I-`` for every entity type in the training data."""
    labels = sorted({s.label for e in examples for s in e.spans})
    return ["O", *(f"{p}-{label}" for label in labels for p in "BI")]


def slot_schema(items: Sequence[Encoded], n_intents: int, tags: list[str]) -> torch.Tensor:
    """(n_intents, n_tags) True where an intent was seen with the tag's entity type (O always)."""
    entity_of = [tag[2:] for tag in tags]
    seen = {(item.intent, entity_of[t]) for item in items for t in item.tags if t != 0}
    allowed = torch.zeros(n_intents, len(tags), dtype=torch.bool)
    for intent in range(n_intents):
        for index, entity in enumerate(entity_of):
            allowed[intent, index] = index == 0 or (intent, entity) in seen
    return allowed


def data_fingerprint(examples: Sequence[Example]) -> str:
    """SHA-256 of the training data, recorded with the model so a version names its data."""
    digest = hashlib.sha256()
    for e in examples:
        digest.update(repr((e.text, e.intent, e.spans)).encode())
    return digest.hexdigest()


def train_nlu(
    train: Sequence[Example],
    dev: Sequence[Example],
    sizes: ModelSizes = ModelSizes(),
    settings: TrainSettings = TrainSettings(),
    init: Path | None = None,
    on_epoch: Callable[[EpochReport], None] | None = None,
    parent: NLUModel | None = None,
    new_pieces: int = 500,
    distill: float = 0.0,
) -> NLUModel:
    """Train the joint model and calibrate its intent confidence on ``dev``.

    Args:
        init: a directory written by ``slmbot nlu pretrain``; its tokenizer (trained on the
            unlabelled text), characters and encoder weights are reused.
        parent: a trained model to fine-tune (`slm.warm_start`): its tokenizer, characters,
            shape and weights are reused, label rows matched by name; ``sizes`` is ignored.
        new_pieces: with ``parent``, at most this many frequent words its tokenizer shatters
            get a piece of their own (`slm.vocab_growth`); 0 keeps the tokenizer as it is.
        distill: with ``parent`` and new intents, how much the parent's own intent distribution
            counts, next to the gold label, on the old examples it reads right (0: not at all).
    """
    seed_everything(settings.seed)
    device = resolve_device(settings.device)
    world = join_world(device)
    intents = sorted({e.intent for e in train})
    tags = tag_names(train)
    pretrained = load_pretrained_encoder(init) if init else None
    if parent is not None:
        words = shattered_words(parent.tokenizer, (e.text for e in train), new_pieces)
        tokenizer, chars = grow_tokenizer(parent.tokenizer, words), parent.chars
        encoder_config = replace(encoder_config_of(parent), vocab_size=tokenizer.vocab_size)
    elif pretrained is not None:
        tokenizer, chars = pretrained.tokenizer, pretrained.chars
        encoder_config = pretrained.config
    else:
        texts = [e.text for e in train]
        tokenizer = Tokenizer(from_main(world, lambda: Tokenizer.train(texts, sizes.vocab_size).model_proto))
        chars = CharVocab.build(e.text for e in train)
        encoder_config = EncoderConfig(vocab_size=tokenizer.vocab_size, n_chars=len(chars), **sizes.shape())
    config = JointConfig(**{**asdict(encoder_config), "n_intents": len(intents), "n_tags": len(tags)})
    encoder = ExampleEncoder(tokenizer, intents, tags)
    items = encoder.all(train)
    swap = EntitySwap(train, sizes.entity_swap, settings.seed)
    model = JointModel(config, tags)
    if sizes.intent_slot_mask:
        model.allowed_tags.copy_(slot_schema(items, len(intents), tags))
    if pretrained is not None:
        model.encoder.load_state_dict(pretrained.encoder_state)
    grown = warm_start(model, intents, tags, tokenizer, parent) if parent is not None else None
    model.to(device)
    nlu = NLUModel(model, tokenizer, chars, intents, tags)
    teacher: dict[str, torch.Tensor] = {}
    no_teacher = torch.zeros(len(intents))  # the soft-target row of an example without one
    if parent is not None:
        new_intents = [name for name in intents if name not in parent.intents]
        imprint_new_intents(nlu, {name: [e.text for e in train if e.intent == name] for name in new_intents}, new_intents)
        if new_intents and distill > 0:
            teacher = parent_targets(parent, [e.text for e in train], [e.intent for e in train], intents, distill)

    def collate(chunk: Sequence[Encoded], to: torch.device):
        batch = nlu.featurize([i.example.text for i in chunk], [i.encoding for i in chunk])
        words = batch.word_mask.sum(1).tolist()
        tag_ids = torch.zeros(batch.word_mask.shape, dtype=torch.long)
        for row, (item, n) in enumerate(zip(chunk, words)):
            tag_ids[row, :n] = torch.tensor(item.tags[:n], dtype=torch.long)
        intent_ids = torch.tensor([i.intent for i in chunk])
        if not teacher:
            return batch.to(to), (intent_ids.to(to), tag_ids.to(to))
        soft = torch.stack([teacher.get(i.source, no_teacher) for i in chunk])
        return batch.to(to), (intent_ids.to(to), tag_ids.to(to), soft.to(to))

    def evaluate(_: torch.nn.Module) -> dict[str, float]:
        predictions = nlu.predict([e.text for e in dev])
        scores = nlu_scores(dev, [p.intent for p in predictions], [p.spans for p in predictions])
        scores["score"] = scores["intent_accuracy"] + scores["slot_f1"] + scores["frame_accuracy"]
        return scores

    started = time.perf_counter()
    redraw = (lambda originals: encoder.variants(originals, swap)) if sizes.entity_swap > 0 else None
    result = fit(model, items, collate, evaluate, "score", settings, on_epoch, length=lambda i: len(i.encoding.ids), redraw=redraw)
    scores, schema = result.scores, "trained" if sizes.intent_slot_mask else "off"
    if sizes.slot_schema_on_dev and not sizes.intent_slot_mask and scores:  # no scores: no epoch ran
        masked = decode_with_schema_if_better(model, slot_schema(items, len(intents), tags), scores, evaluate)
        if masked is not None:
            scores, schema = masked, "chosen on dev"
    nlu.temperature, ece = _calibrate(nlu, dev)
    nlu.meta = {
        "training": {
            "examples": len(train),
            "dev_examples": len(dev),
            "data_sha256": data_fingerprint(train),
            "settings": asdict(settings),
            "entity_swap": sizes.entity_swap,
            "slot_schema": schema,
            "initialised_from": str(init) if init else None,
            "fine_tuned": grown,
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "seconds": round(time.perf_counter() - started, 2),
            "device": result.device,
            "world_size": result.world_size,
        },
        "metrics": {"dev": {k: v for k, v in scores.items() if k != "score"}, "dev_ece": ece},
    }
    return nlu


def decode_with_schema_if_better(
    model: JointModel, schema: torch.Tensor, scores: dict[str, float], evaluate: Callable[[torch.nn.Module], dict[str, float]]
) -> dict[str, float] | None:
    """Keep ``schema`` (see `slot_schema`) as the trained ``model``'s decoding constraint when dev
    ``evaluate`` scores strictly higher with it than ``scores`` (without it); its dev scores then,
    None (and the model as it was) otherwise."""
    unconstrained = model.allowed_tags.clone()
    model.allowed_tags.copy_(schema)
    masked = evaluate(model)
    if masked["score"] > scores["score"]:
        return masked
    model.allowed_tags.copy_(unconstrained)
    return None


def _calibrate(nlu: NLUModel, dev: Sequence[Example]) -> tuple[float, float]:
    """Fit the temperature on dev logits; return it with the dev ECE after scaling."""
    index = {name: i for i, name in enumerate(nlu.intents)}
    logits = nlu.logits([e.text for e in dev])
    labels = torch.tensor([index.get(e.intent, -1) for e in dev])
    temperature = fit_temperature(logits, labels)
    probs = torch.softmax(logits / temperature, dim=-1)
    confidence, predicted = probs.max(dim=-1)
    return temperature, expected_calibration_error(confidence, predicted == labels)


