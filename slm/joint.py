"""Joint intent classifier + slot tagger: a small transformer encoder trained from scratch.

Each subword piece is embedded from its id, the characters of the word it belongs to (a
char-CNN, so unseen entity values still look like names, numbers or ids), whether it opens
a word, and its position. An optional BiLSTM branch adds word-order locality (residual; it
helps when data is small), then a pre-norm transformer encodes the sequence.

The intent head reads a masked mean+max pool plus a bag of hashed word and character
n-grams, the sparse view that carries intent detection when an author gives only a dozen
examples per intent. The slot head tags words (the mean of their pieces), seeing the
sentence vector too, through a BIO-constrained CRF, so an entity never starts mid-word.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from slm.crf import CRF, FORBIDDEN
from slm.features import Batch
from slm.settings import EncoderShape
from slm.tokenizer import UNK_ID

DISTILL_TEMPERATURE = 2.0
"""How much a teacher's intent distribution is softened for distillation (`slm.warm_start`)."""


@dataclass(kw_only=True)
class EncoderConfig(EncoderShape):
    """Everything the shared encoder needs (also what MLM pre-training trains)."""

    vocab_size: int
    n_chars: int
    char_dim: int = 32
    char_filters: int = 96
    max_pieces: int = 96
    max_word_chars: int = 24


@dataclass(kw_only=True)
class JointConfig(EncoderConfig):
    """Encoder sizes plus the label spaces of the two heads."""

    n_intents: int = 1
    n_tags: int = 1
    ngram_buckets: int = 2**14
    ngram_dim: int = 64


class CharCNN(nn.Module):
    """Max-pooled convolutions over a word's characters -> one vector per piece."""

    def __init__(self, n_chars: int, char_dim: int, filters: int, d_model: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(n_chars, char_dim, padding_idx=0)
        self.conv = nn.Conv1d(char_dim, filters, kernel_size=3, padding=1)
        self.proj = nn.Linear(filters, d_model)

    def forward(self, chars: torch.Tensor, word_starts: torch.Tensor) -> torch.Tensor:
        """Each word's characters are convolved once, and the vector shared by its pieces.

        Every piece of a word carries the word's characters, and padding carries none: reading
        only words' first pieces convolves about a third of the rows a batch holds. Pieces
        without characters (padding) get what empty rows would: the projection of nothing.
        """
        B, T, C = chars.shape
        rows = chars.view(B * T, C)
        spelled = rows[:, 0] != 0
        first = word_starts.view(-1).bool() & spelled  # a word's first piece
        word_of = torch.cumsum(first, 0) - 1  # for a spelled piece: the word it belongs to
        words = rows[first]
        x = self.embed(words).transpose(1, 2)  # (words, char_dim, C)
        x = F.relu(self.conv(x))  # (words, filters, C)
        x = x.masked_fill((words.unsqueeze(1) == 0), 0.0).amax(dim=2)  # (words, filters)
        vectors = self.proj(x)  # (words, d_model)
        out = self.proj.bias.to(vectors.dtype).expand(B * T, -1).clone()
        out[spelled] = vectors[word_of[spelled]]
        return out.view(B, T, -1)  # (B, T, d_model)


class Encoder(nn.Module):
    """Pieces + characters + word starts + positions -> contextual vectors."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.pieces = nn.Embedding(config.vocab_size, d, padding_idx=0)
        self.chars = CharCNN(config.n_chars, config.char_dim, config.char_filters, d)
        self.word_start = nn.Embedding(2, d)
        self.position = nn.Embedding(config.max_pieces, d)
        self.dropout = nn.Dropout(config.dropout)
        self.recurrent = nn.LSTM(d, d // 2, batch_first=True, bidirectional=True) if config.recurrent else None
        layer = nn.TransformerEncoderLayer(
            d, config.n_heads, config.d_ff, config.dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerEncoder(layer, config.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)

    def forward(self, batch: Batch) -> torch.Tensor:
        T = batch.pieces.shape[1]
        pieces = batch.pieces
        if self.training and self.config.piece_dropout > 0:
            # Hide some pieces behind <unk> so the model learns to read unseen words by their characters.
            hidden = (torch.rand(pieces.shape, device=pieces.device) < self.config.piece_dropout) & batch.mask
            pieces = pieces.masked_fill(hidden, UNK_ID)
        positions = torch.arange(T, device=pieces.device)
        x = (
            self.pieces(pieces)
            + self.chars(batch.chars, batch.word_starts)
            + self.word_start(batch.word_starts)
            + self.position(positions)
        )  # (B, T, d)
        x = self.dropout(x)
        if self.recurrent is not None:
            x = x + self._recurrent(x, batch.mask)
        # A batch without padding (e.g. a single message) needs no mask, and attention runs faster without one.
        padding = None if bool(batch.mask.all()) else ~batch.mask
        x = self.layers(x, src_key_padding_mask=padding)
        return self.norm(x)  # (B, T, d)

    def _recurrent(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """BiLSTM over the real pieces only (packing keeps padding out of the backward pass)."""
        if bool(mask.all()):  # nothing to pack, e.g. a single message: skip the packing cost
            return self.recurrent(x)[0]
        lengths = mask.sum(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        return nn.utils.rnn.pad_packed_sequence(self.recurrent(packed)[0], batch_first=True, total_length=x.shape[1])[0]


@dataclass
class JointOutput:
    """Unnormalised scores of both heads."""

    intent_logits: torch.Tensor  # (B, n_intents)
    tag_emissions: torch.Tensor  # (B, W, n_tags), one row per word


class JointModel(nn.Module):
    """Encoder + intent head + CRF slot head, trained with the sum of both losses."""

    def __init__(self, config: JointConfig, tags: list[str]) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.encoder = Encoder(config)
        self.ngrams = nn.EmbeddingBag(config.ngram_buckets, config.ngram_dim, mode="mean")
        self.intent_head = nn.Sequential(
            nn.Linear(2 * d + config.ngram_dim, d), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(d, config.n_intents)
        )
        self.slot_head = nn.Sequential(
            nn.Linear(2 * d, d), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(d, config.n_tags)
        )
        self.crf = CRF(tags)
        # Which tags each intent may use (learned from the training data's co-occurrences;
        # all True when the constraint is off). Saved with the weights.
        self.register_buffer("allowed_tags", torch.ones(config.n_intents, config.n_tags, dtype=torch.bool))

    def forward(
        self, batch: Batch, targets: tuple[torch.Tensor, ...] | None = None
    ) -> tuple[JointOutput, torch.Tensor | None]:
        """Score a batch; with ``targets`` (intent ids (B,), tag ids (B, W), and optionally soft
        intent targets (B, n_intents), all-zero rows where there is none) also return the loss."""
        h = self.encoder(batch)  # (B, T, d)
        mask = batch.mask.unsqueeze(-1)  # (B, T, 1)
        mean = (h * mask).sum(1) / mask.sum(1)  # (B, d)
        peak = h.masked_fill(~mask, torch.finfo(h.dtype).min).amax(1)  # (B, d)
        bag = F.dropout(self.ngrams(batch.ngrams, batch.ngram_offsets), self.config.dropout, self.training)  # (B, g)
        intent_logits = self.intent_head(torch.cat([mean, peak, bag.to(h.dtype)], dim=-1))  # (B, n_intents)
        words = batch.word_pool.to(h.dtype) @ h  # (B, W, d): tags belong to words, never to half a word
        context = mean.unsqueeze(1).expand_as(words)
        emissions = self.slot_head(torch.cat([words, context], dim=-1))  # (B, W, n_tags)
        # Tags come from the intent's slot schema: the gold intent in training, the predicted one after.
        intents = targets[0] if targets is not None else intent_logits.argmax(-1)
        emissions = emissions.masked_fill(~self.allowed_tags[intents].unsqueeze(1), FORBIDDEN)
        output = JointOutput(intent_logits, emissions)
        if targets is None:
            return output, None
        tags = targets[1]
        loss = F.cross_entropy(intent_logits.float(), intents) + self.crf.nll(emissions, tags, batch.word_mask).mean()
        if len(targets) > 2:
            loss = loss + distillation_loss(intent_logits.float(), targets[2])
        return output, loss


def distillation_loss(logits: torch.Tensor, soft: torch.Tensor, temperature: float = DISTILL_TEMPERATURE) -> torch.Tensor:
    """Cross-entropy against a teacher's softened distribution, on the rows that have one
    (scaled by temperature squared, as the gradients shrink by that much). A row summing to
    less than 1 weighs that much less."""
    rows = soft.sum(-1) > 0
    if not bool(rows.any()):
        return logits.new_zeros(())
    log_probs = F.log_softmax(logits[rows] / temperature, dim=-1)
    return -(soft[rows] * log_probs).sum(-1).mean() * temperature**2 * rows.float().mean()
