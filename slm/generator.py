"""A trained response generator: its own piece vocabulary + the seq2seq model, trained and saved.

``generate(contexts)`` returns each reply with a score, the mean log-probability per piece,
which the dialogue manager's safety gate compares with a threshold.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from slm.checkpoint import load_checkpoint, save_checkpoint
from slm.dialogue_corpora import DialoguePair
from slm.errors import CheckpointError
from slm.exemplars import ExemplarIndex
from slm.pieces import BOS_ID, EOS_ID, PAD_ID, PieceCodec
from slm.seq2seq import Seq2Seq
from slm.settings import Seq2SeqConfig, TrainSettings
from slm.train import EpochReport, fit, from_main, join_world, resolve_device, seed_everything

KIND = "seq2seq.v1"
PIECES_FILE = "pieces.model"
EXEMPLARS_FILE = "exemplars.json"


@dataclass(frozen=True)
class Generated:
    """A generated reply; ``score`` is its mean log-probability per piece (0 is certain)."""

    text: str
    score: float


@dataclass
class _Item:
    source: list[int]
    target: list[int]


class Generator:
    """Piece codec + seq2seq model."""

    def __init__(self, model: Seq2Seq, codec: PieceCodec, meta: dict[str, Any] | None = None, exemplars: ExemplarIndex | None = None) -> None:
        self.model, self.codec, self.meta, self.exemplars = model, codec, meta or {}, exemplars

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def batch(self, contexts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded source ids (B, S) and their mask."""
        sources = [_source_ids(self.codec, self.model.config, c) for c in contexts]
        width = max(map(len, sources))
        src = torch.tensor([s + [PAD_ID] * (width - len(s)) for s in sources], device=self.device)
        return src, src != PAD_ID

    def loss(self, pairs: Sequence[DialoguePair]) -> float:
        """Mean cross-entropy per reply on ``pairs`` (contexts get this generator's exemplars)."""
        if self.exemplars is not None:
            pairs = [replace(p, context=c) for p, c in zip(pairs, self.exemplars.augment([p.context for p in pairs]))]
        was_training = self.model.training
        self.model.eval()
        try:
            return _mean_loss(self.model, _items(pairs, self.codec, self.model.config), self.device)
        finally:
            self.model.train(was_training)

    def generate(self, contexts: Sequence[str], beam: int = 4, length_penalty: float = 1.0, batch_size: int = 64) -> list[Generated]:
        """One reply per context: beam search when ``beam`` > 1, batched greedy decoding otherwise."""
        if self.exemplars is not None:
            contexts = self.exemplars.augment(contexts)
        with torch.inference_mode():
            return self._decode(contexts, beam, length_penalty, batch_size)

    def _decode(self, contexts: Sequence[str], beam: int, length_penalty: float, batch_size: int) -> list[Generated]:
        self.model.eval()
        results: list[Generated] = []
        if beam <= 1:
            for start in range(0, len(contexts), batch_size):
                ids, scores = self.model.greedy(*self.batch(contexts[start : start + batch_size]))
                results += [Generated(self.codec.decode(i), s) for i, s in zip(ids, scores)]
            return results
        for context in contexts:
            ids, score = self.model.beam_search(*self.batch([context]), beam=beam, length_penalty=length_penalty)
            results.append(Generated(self.codec.decode(ids), score))
        return results

    def save(self, directory: Path) -> None:
        """Write a checkpoint directory (see `slm.checkpoint`)."""
        meta = {"config": asdict(self.model.config), **self.meta}
        files = {PIECES_FILE: self.codec.model_proto}
        if self.exemplars is not None:
            files[EXEMPLARS_FILE] = json.dumps({"contexts": self.exemplars.contexts, "responses": self.exemplars.responses}).encode()
        save_checkpoint(Path(directory), KIND, self.model.state_dict(), meta, files)

    @classmethod
    def load(cls, directory: Path, device: str | torch.device = "cpu") -> Generator:
        """Load and verify a generator checkpoint.

        Raises:
            CheckpointError: missing, corrupt, or not a generator.
        """
        state, manifest = load_checkpoint(Path(directory), KIND)
        model = Seq2Seq(Seq2SeqConfig(**manifest["config"]))
        try:
            model.load_state_dict(state)
        except RuntimeError as error:
            raise CheckpointError(f"{directory}: weights do not fit the saved model config ({error})") from None
        codec = PieceCodec((Path(directory) / PIECES_FILE).read_bytes())
        meta = {k: v for k, v in manifest.items() if k not in ("config", "files", "format", "kind")}
        exemplars = None
        if model.config.exemplars:
            stored = json.loads((Path(directory) / EXEMPLARS_FILE).read_text(encoding="utf-8"))
            exemplars = ExemplarIndex(stored["contexts"], stored["responses"])
        return cls(model.to(device).eval(), codec, meta, exemplars)


def _source_ids(codec: PieceCodec, config: Seq2SeqConfig, context: str) -> list[int]:
    """The context's pieces, keeping the newest ``max_source`` (the start is the oldest turn)."""
    return codec.encode(context)[-config.max_source :] or [EOS_ID]


def _items(pairs: Sequence[DialoguePair], codec: PieceCodec, config: Seq2SeqConfig) -> list[_Item]:
    return [_Item(_source_ids(codec, config, p.context), codec.encode(p.response)[: config.max_target - 1]) for p in pairs]


@torch.no_grad()
def _mean_loss(module: torch.nn.Module, items: Sequence[_Item], device: torch.device) -> float:
    total, count = 0.0, 0
    for start in range(0, len(items), 128):
        chunk = items[start : start + 128]
        inputs, targets = _collate(chunk, device)
        _, loss = module(inputs, targets)
        total, count = total + loss.item() * len(chunk), count + len(chunk)
    return total / count


def _collate(chunk: Sequence[_Item], device: torch.device):
    width = max(len(i.source) for i in chunk)
    length = max(len(i.target) for i in chunk) + 1
    src = torch.tensor([i.source + [PAD_ID] * (width - len(i.source)) for i in chunk])
    tgt_in = torch.tensor([[BOS_ID] + i.target + [PAD_ID] * (length - 1 - len(i.target)) for i in chunk])
    tgt_out = torch.tensor([i.target + [EOS_ID] + [PAD_ID] * (length - 1 - len(i.target)) for i in chunk])
    return (src.to(device), (src != PAD_ID).to(device), tgt_in.to(device)), tgt_out.to(device)


def train_generator(
    train: Sequence[DialoguePair],
    dev: Sequence[DialoguePair],
    config: Seq2SeqConfig = Seq2SeqConfig(),
    settings: TrainSettings = TrainSettings(),
    on_epoch: Callable[[EpochReport], None] | None = None,
    extra_text: Sequence[str] = (),
    parent: Generator | None = None,
) -> Generator:
    """Train the piece vocabulary and the model; early stopping on dev loss.

    Args:
        extra_text: more text for the piece vocabulary only (e.g. slot values that must encode well).
        parent: a trained generator to fine-tune: its pieces (byte fallback spells any new
            text), shape and weights are reused; ``config`` and ``extra_text`` are ignored.
    """
    if not train or not dev:
        raise ValueError("the generator needs training and dev pairs")
    seed_everything(settings.seed)
    device = resolve_device(settings.device)
    world = join_world(device)
    if parent is not None:
        codec, config = parent.codec, parent.model.config
    else:
        texts = [p.context for p in train] + [p.response for p in train] + list(extra_text)
        codec = PieceCodec(from_main(world, lambda: PieceCodec.train(texts, config.vocab_size).model_proto))
        config = replace(config, vocab_size=codec.vocab_size)
    model = Seq2Seq(config)
    if parent is not None:
        model.load_state_dict(parent.model.state_dict())
    model.to(device)
    exemplars = ExemplarIndex([p.context for p in train], [p.response for p in train]) if config.exemplars else None
    if exemplars is not None:
        train = [replace(p, context=c) for p, c in zip(train, exemplars.augment([p.context for p in train], exclude_self=True))]
        dev = [replace(p, context=c) for p, c in zip(dev, exemplars.augment([p.context for p in dev]))]
    items, dev_items = _items(train, codec, config), _items(dev, codec, config)

    def evaluate(module: torch.nn.Module) -> dict[str, float]:
        loss = _mean_loss(module, dev_items, device)
        return {"dev_loss": loss, "score": -loss}

    started = time.perf_counter()
    result = fit(model, items, _collate, evaluate, "score", settings, on_epoch, length=lambda i: len(i.source))
    meta = {
        "training": {
            "pairs": len(train),
            "dev_pairs": len(dev),
            "settings": asdict(settings),
            "best_epoch": result.best_epoch,
            "epochs_run": result.epochs_run,
            "seconds": round(time.perf_counter() - started, 2),
            "device": result.device,
        },
        "metrics": {"dev_loss": result.scores.get("dev_loss")},
    }
    return Generator(model, codec, meta, exemplars)
