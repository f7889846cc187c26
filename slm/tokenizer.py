"""SentencePiece subword tokenizer that keeps every piece's character offsets.

Text is first split into words (runs of word characters, or single punctuation marks) and
each word into subword pieces, so entity spans that follow word boundaries map to subword
BIO tags and back without loss, and the model can pool characters per word.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import sentencepiece as spm

WORD = re.compile(r"\w+|[^\w\s]")
PAD, UNK, MASK = "<pad>", "<unk>", "[MASK]"
PAD_ID, UNK_ID = 0, 1
SPACE = "\u2581"


def fold_case(word: str) -> str:
    """Lower-case without changing length ('İ'.lower() has two characters), so offsets hold."""
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in word)


@dataclass(frozen=True)
class Encoding:
    """Subword pieces of one text, each tied to its characters and to the word it is part of."""

    ids: list[int]
    offsets: list[tuple[int, int]]
    word_index: list[int]
    words: list[tuple[int, int]]

    @property
    def word_starts(self) -> list[bool]:
        """True where a piece is the first piece of its word."""
        return [i == 0 or self.word_index[i] != self.word_index[i - 1] for i in range(len(self.ids))]


class Tokenizer:
    """A trained SentencePiece model plus the word splitting rule around it."""

    def __init__(self, model_proto: bytes) -> None:
        self.model_proto = model_proto
        self._sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self.pad_id = self._sp.piece_to_id(PAD)
        self.unk_id = self._sp.unk_id()
        self.mask_id = self._sp.piece_to_id(MASK)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 6000) -> Tokenizer:
        """Train a unigram SentencePiece model on ``texts`` (labelled plus any unlabelled text).

        ``hard_vocab_limit=False`` lets a small corpus produce fewer pieces than asked for.
        """
        sentences = [" ".join(fold_case(w) for w in WORD.findall(text)) for text in texts]
        buffer = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(s for s in sentences if s),
            model_writer=buffer,
            vocab_size=vocab_size,
            hard_vocab_limit=False,
            model_type="unigram",
            normalization_rule_name="identity",
            character_coverage=1.0,
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=-1,
            eos_id=-1,
            pad_piece=PAD,
            unk_piece=UNK,
            control_symbols=[MASK],
            num_threads=1,
            minloglevel=2,
        )
        return cls(buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> Tokenizer:
        """Load a model written by `save`."""
        return cls(Path(path).read_bytes())

    def save(self, path: Path) -> None:
        """Write the SentencePiece model file."""
        Path(path).write_bytes(self.model_proto)

    @property
    def vocab_size(self) -> int:
        """Number of piece ids, special pieces included."""
        return self._sp.get_piece_size()

    def piece(self, piece_id: int) -> str:
        """The piece an id stands for."""
        return self._sp.id_to_piece(piece_id)

    def piece_id(self, piece: str) -> int:
        """The id of a piece (``unk_id`` for one the model lacks)."""
        return self._sp.piece_to_id(piece)

    def score(self, piece: str) -> float:
        """The unigram model's log-probability of a piece (what segmentation maximises)."""
        return self._sp.get_score(self._sp.piece_to_id(piece))

    def pieces_of(self, word: str) -> list[str]:
        """How one (case-folded) word is spelled in pieces."""
        return self._sp.encode(word, out_type=str)

    def words(self, text: str) -> list[tuple[int, int]]:
        """Character offsets of the words the text splits into."""
        return [match.span() for match in WORD.finditer(text)]

    def encode(self, text: str) -> Encoding:
        """Split ``text`` into pieces with ids, character offsets and word membership."""
        words = self.words(text)
        # One call per word: sentencepiece's batch call costs ~10x more than these for a short message.
        pieces_per_word = [self._sp.encode(fold_case(text[s:e]), out_type=str) for s, e in words]
        ids: list[int] = []
        offsets: list[tuple[int, int]] = []
        word_index: list[int] = []
        for index, ((start, end), pieces) in enumerate(zip(words, pieces_per_word)):
            surfaces = [p.removeprefix(SPACE) for p in pieces]
            if sum(map(len, surfaces)) != end - start:
                # SentencePiece changed the text somehow: keep the word whole rather than misalign.
                pieces, surfaces = [UNK], [text[start:end]]
            position = start
            for piece, surface in zip(pieces, surfaces):
                if not surface:
                    continue  # a bare word-boundary marker covers no characters
                ids.append(self._sp.piece_to_id(piece))
                offsets.append((position, position + len(surface)))
                word_index.append(index)
                position += len(surface)
        return Encoding(ids, offsets, word_index, words)
