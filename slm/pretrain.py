"""Masked-language-model pre-training of the encoder on unlabelled text (e.g. logged messages).

15% of pieces are chosen; of those 80% become [MASK], 10% a random piece, 10% stay. A chosen
piece's word characters are hidden too, or the char-CNN would give the answer away.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from slm.checkpoint import load_checkpoint, save_checkpoint
from slm.features import Batch, CharVocab, make_batch
from slm.joint import Encoder, EncoderConfig
from slm.settings import ModelSizes
from slm.tokenizer import Tokenizer
from slm.train import (
    EpochReport,
    TrainSettings,
    fit,
    from_main,
    is_main_process,
    join_world,
    resolve_device,
    seed_everything,
)

KIND = "encoder.v1"
TOKENIZER_FILE = "tokenizer.model"
IGNORE = -100


@dataclass
class PretrainedEncoder:
    """What fine-tuning reuses from a pre-training run."""

    config: EncoderConfig
    tokenizer: Tokenizer
    chars: CharVocab
    encoder_state: dict[str, torch.Tensor]


class MaskedLM(nn.Module):
    """Encoder + output projection tied to the piece embeddings."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.transform = nn.Sequential(nn.Linear(config.d_model, config.d_model), nn.GELU(), nn.LayerNorm(config.d_model))
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, batch: Batch, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.transform(self.encoder(batch))  # (B, T, d)
        logits = h @ self.encoder.pieces.weight.T + self.bias  # (B, T, V)
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.view(-1), ignore_index=IGNORE)


def mask_batch(batch: Batch, mask_id: int, vocab_size: int, rng: random.Random, rate: float = 0.15) -> tuple[Batch, torch.Tensor]:
    """Corrupt ``batch`` for MLM; targets are the original ids at chosen positions, IGNORE elsewhere.

    Every row gets at least one chosen position, so no batch has an empty loss.
    """
    pieces, chars = batch.pieces.clone(), batch.chars.clone()
    targets = torch.full_like(pieces, IGNORE)
    for row, length in enumerate(batch.mask.sum(1).tolist()):
        chosen = [col for col in range(length) if rng.random() < rate] or [rng.randrange(length)]
        for col in chosen:
            targets[row, col] = pieces[row, col]
            chars[row, col] = 0
            roll = rng.random()
            if roll < 0.8:
                pieces[row, col] = mask_id
            elif roll < 0.9:
                pieces[row, col] = rng.randrange(3, vocab_size)
    return replace(batch, pieces=pieces, chars=chars), targets


def pretrain(
    texts: Sequence[str],
    out: Path,
    sizes: ModelSizes,
    settings: TrainSettings,
    on_epoch: Callable[[EpochReport], None] | None = None,
) -> dict[str, float]:
    """Train tokenizer + encoder with MLM on ``texts`` and save them to ``out``.

    5% of the texts (at least one) are held out; training stops when their MLM loss stops falling.
    """
    seed_everything(settings.seed)
    device = resolve_device(settings.device)
    texts = [t for t in dict.fromkeys(texts) if t.strip()]
    random.Random(settings.seed).shuffle(texts)
    held = max(1, len(texts) // 20)
    dev, train = texts[:held], texts[held:]
    world = join_world(device)
    tokenizer = Tokenizer(from_main(world, lambda: Tokenizer.train(train, sizes.vocab_size).model_proto))
    chars = CharVocab.build(train)
    config = EncoderConfig(vocab_size=tokenizer.vocab_size, n_chars=len(chars), **sizes.shape())
    model = MaskedLM(config).to(device)
    rng = random.Random(settings.seed)

    def featurize(chunk: Sequence[str]) -> Batch:
        encodings = [tokenizer.encode(t) for t in chunk]
        return make_batch(list(chunk), encodings, chars, config.max_pieces, config.max_word_chars, tokenizer.pad_id)

    def collate(chunk: Sequence[str], to: torch.device):
        batch, targets = mask_batch(featurize(chunk), tokenizer.mask_id, tokenizer.vocab_size, rng)
        return batch.to(to), targets.to(to)

    def evaluate(m: nn.Module) -> dict[str, float]:
        dev_rng = random.Random(0)  # the same corruption every epoch, so losses compare
        losses = []
        for start in range(0, len(dev), 256):
            batch, targets = mask_batch(featurize(dev[start : start + 256]), tokenizer.mask_id, tokenizer.vocab_size, dev_rng)
            losses.append(float(m(batch.to(device), targets.to(device))[1]))
        loss = sum(losses) / len(losses)
        return {"mlm_loss": loss, "neg_loss": -loss}

    result = fit(model, train, collate, evaluate, "neg_loss", settings, on_epoch, length=len)
    meta = {
        "config": asdict(config),
        "labels": {"chars": chars.chars},
        "training": {"texts": len(train), "settings": asdict(settings), "seconds": round(result.seconds, 2)},
        "metrics": {"dev_mlm_loss": result.scores["mlm_loss"]},
    }
    state = model.encoder.state_dict()
    if is_main_process():
        save_checkpoint(Path(out), KIND, state, meta, {TOKENIZER_FILE: tokenizer.model_proto})
    return meta["metrics"]


def load_pretrained_encoder(directory: Path) -> PretrainedEncoder:
    """Load a directory written by `pretrain` (verified like every checkpoint)."""
    state, manifest = load_checkpoint(Path(directory), KIND)
    return PretrainedEncoder(
        EncoderConfig(**manifest["config"]),
        Tokenizer.load(Path(directory) / TOKENIZER_FILE),
        CharVocab(manifest["labels"]["chars"]),
        state,
    )
