"""Turn tokenized text into padded tensors: piece ids, per-word characters, word starts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, fields
from typing import Iterable

import torch

from slm.tokenizer import Encoding

CHAR_PAD, CHAR_UNK = 0, 1


@dataclass
class Batch:
    """Model inputs for B texts padded to T pieces of at most C characters per word."""

    pieces: torch.Tensor  # (B, T) piece ids
    chars: torch.Tensor  # (B, T, C) characters of the word each piece belongs to
    word_starts: torch.Tensor  # (B, T) 1 on a word's first piece
    mask: torch.Tensor  # (B, T) True on real pieces
    word_pool: torch.Tensor  # (B, W, T) averages a word's pieces: word vectors = word_pool @ piece vectors
    word_mask: torch.Tensor  # (B, W) True on real words

    def to(self, device: torch.device | str) -> Batch:
        """The same batch on ``device``."""
        return Batch(*(getattr(self, f.name).to(device) for f in fields(self)))


class CharVocab:
    """Characters seen in training; the rest map to one unknown id."""

    def __init__(self, chars: list[str]) -> None:
        self.chars = chars
        self._ids = {c: i + 2 for i, c in enumerate(chars)}

    @classmethod
    def build(cls, texts: Iterable[str], min_count: int = 1) -> CharVocab:
        """Collect characters occurring at least ``min_count`` times, most frequent first."""
        counts = Counter(c for text in texts for c in text if not c.isspace())
        return cls([c for c, n in counts.most_common() if n >= min_count])

    def __len__(self) -> int:
        return len(self.chars) + 2

    def encode(self, word: str) -> list[int]:
        """Character ids of ``word``."""
        return [self._ids.get(c, CHAR_UNK) for c in word]


def make_batch(
    texts: list[str],
    encodings: list[Encoding],
    chars: CharVocab,
    max_pieces: int,
    max_word_chars: int,
    pad_id: int,
) -> Batch:
    """Pad a list of encodings into one `Batch` (texts longer than ``max_pieces`` are cut).

    An empty text still gets one (padding) piece and word, so pooling never divides by zero.
    """
    T = max(1, min(max_pieces, max(len(e.ids) for e in encodings)))
    W = max(1, max(word_count(e, T) for e in encodings))
    C = max_word_chars
    B = len(encodings)
    pieces = torch.full((B, T), pad_id, dtype=torch.long)
    char_ids = torch.full((B, T, C), CHAR_PAD, dtype=torch.long)
    starts = torch.zeros((B, T), dtype=torch.long)
    mask = torch.zeros((B, T), dtype=torch.bool)
    word_pool = torch.zeros((B, W, T))
    word_mask = torch.zeros((B, W), dtype=torch.bool)
    for row, (text, encoding) in enumerate(zip(texts, encodings)):
        n = min(T, len(encoding.ids))
        if n == 0:
            mask[row, 0] = word_mask[row, 0] = True
            word_pool[row, 0, 0] = 1.0
            continue
        pieces[row, :n] = torch.tensor(encoding.ids[:n])
        mask[row, :n] = True
        starts[row, :n] = torch.tensor(encoding.word_starts[:n], dtype=torch.long)
        word_chars = [chars.encode(text[s:e][:C]) for s, e in encoding.words]
        for col in range(n):
            word = encoding.word_index[col]
            ids = word_chars[word]
            char_ids[row, col, : len(ids)] = torch.tensor(ids)
            word_pool[row, word, col] = 1.0
        words = word_count(encoding, T)
        word_mask[row, :words] = True
        word_pool[row, :words] /= word_pool[row, :words].sum(1, keepdim=True)
    return Batch(pieces, char_ids, starts, mask, word_pool, word_mask)


def word_count(encoding: Encoding, max_pieces: int) -> int:
    """How many words keep all their pieces within the first ``max_pieces``."""
    if len(encoding.ids) <= max_pieces:
        return len(encoding.words)
    return encoding.word_index[max_pieces]  # the word cut in half is dropped too
