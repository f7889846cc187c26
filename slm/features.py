"""Turn tokenized text into padded tensors: piece ids, per-word characters, word starts."""

from __future__ import annotations

import itertools
import zlib
from collections import Counter
from dataclasses import dataclass, fields
from typing import Iterable

import torch

from slm.tokenizer import WORD, Encoding, fold_case

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
    ngrams: torch.Tensor  # (N,) hashed word and character n-gram ids of all texts, concatenated
    ngram_offsets: torch.Tensor  # (B,) where each text's n-grams start in ``ngrams``

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


def hashed_ngrams(text: str, buckets: int) -> list[int]:
    """Bag of hashed features: words, word bigrams, and character 3- and 4-grams of each word.

    The sparse view of a text (like DIET's sparse features) that lets the intent head learn
    from a dozen examples per intent; crc32 keeps the hashing stable across processes.
    """
    words = [fold_case(w) for w in WORD.findall(text)]
    features = [f"w:{w}" for w in words] + [f"b:{a} {b}" for a, b in zip(words, words[1:])]
    for word in words:
        padded = f"<{word}>"
        features += [padded[i : i + n] for n in (3, 4) for i in range(len(padded) - n + 1)]
    return [zlib.crc32(f.encode()) % buckets for f in features] or [0]


def make_batch(
    texts: list[str],
    encodings: list[Encoding],
    chars: CharVocab,
    max_pieces: int,
    max_word_chars: int,
    pad_id: int,
    ngram_buckets: int = 1,
) -> Batch:
    """Pad a list of encodings into one `Batch` (texts longer than ``max_pieces`` are cut).

    An empty text still gets one (padding) piece and word, so pooling never divides by zero.
    """
    T = max(1, min(max_pieces, max(len(e.ids) for e in encodings)))
    W = max(1, max(word_count(e, T) for e in encodings))
    # Characters past the batch's longest word would only be padding: its embedding is zero,
    # exactly what the convolution pads with, so leaving them out changes no result.
    C = max(1, min(max_word_chars, max((e - s for encoding in encodings for s, e in encoding.words), default=1)))
    # Built as Python lists and converted once: per-element tensor writes dominate otherwise.
    pieces, char_ids, starts, lengths, word_counts = [], [], [], [], []
    pool: list[tuple[int, int, int, float]] = []  # (row, word, piece, weight) entries of word_pool
    for row, (text, encoding) in enumerate(zip(texts, encodings)):
        n, words = min(T, len(encoding.ids)), word_count(encoding, T)
        word_chars = [(chars.encode(text[s:e][:C]) + [CHAR_PAD] * C)[:C] for s, e in encoding.words]
        pieces.append(encoding.ids[:n] + [pad_id] * (T - n))
        char_ids.append([word_chars[w] for w in encoding.word_index[:n]] + [[CHAR_PAD] * C] * (T - n))
        starts.append([int(x) for x in encoding.word_starts[:n]] + [0] * (T - n))
        if n == 0:  # an empty text keeps one padding piece and word to pool over
            n, words = 1, 1
            pool.append((row, 0, 0, 1.0))
        words = max(words, 1)  # a first word longer than max_pieces is kept, cut short
        lengths.append(n)
        word_counts.append(words)
        sizes = Counter(encoding.word_index[:n])
        pool += [(row, w, col, 1.0 / sizes[w]) for col, w in enumerate(encoding.word_index[:n]) if w < words]
    rows, word_ids, cols, weights = zip(*pool)
    word_pool = torch.zeros((len(encodings), W, T))
    word_pool[list(rows), list(word_ids), list(cols)] = torch.tensor(weights)
    positions = torch.arange(T)
    mask = positions.unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    word_mask = torch.arange(W).unsqueeze(0) < torch.tensor(word_counts).unsqueeze(1)
    bags = [hashed_ngrams(text, ngram_buckets) for text in texts]
    offsets = torch.tensor([0, *itertools.accumulate(len(b) for b in bags)][:-1], dtype=torch.long)
    ngrams = torch.tensor([i for bag in bags for i in bag], dtype=torch.long)
    return Batch(
        torch.tensor(pieces), torch.tensor(char_ids), torch.tensor(starts), mask, word_pool, word_mask, ngrams, offsets
    )


def word_count(encoding: Encoding, max_pieces: int) -> int:
    """How many words keep all their pieces within the first ``max_pieces``."""
    if len(encoding.ids) <= max_pieces:
        return len(encoding.words)
    return encoding.word_index[max_pieces]  # the word cut in half is dropped too
