"""A reversible SentencePiece vocabulary for text generation (the generator's own, not the NLU's).

Unlike `slm.tokenizer` (which folds case and splits punctuation so entity offsets line up),
this keeps text exactly: decode(encode(text)) == text up to whitespace runs, and byte
fallback means any character, an unseen name or an emoji, can be encoded and copied.
"""

from __future__ import annotations

import io
from typing import Iterable

import sentencepiece as spm

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3


class PieceCodec:
    """Text <-> piece ids with padding, begin and end markers."""

    def __init__(self, model_proto: bytes) -> None:
        self.model_proto = model_proto
        self._sp = spm.SentencePieceProcessor(model_proto=model_proto)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = 4000) -> PieceCodec:
        """Train a unigram model on ``texts``; a small corpus may give fewer pieces than asked.

        The vocabulary always has room for the 256 byte pieces plus every character seen.
        """
        sentences = [t for t in texts if t.strip()]
        required = 4 + 256 + len(set("".join(sentences)))
        buffer = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=buffer,
            vocab_size=max(vocab_size, required),
            hard_vocab_limit=False,
            model_type="unigram",
            normalization_rule_name="identity",
            byte_fallback=True,
            split_digits=True,
            character_coverage=0.9995,
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            num_threads=1,
            minloglevel=2,
        )
        return cls(buffer.getvalue())

    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        """Piece ids of ``text`` (no markers)."""
        return self._sp.encode(text, out_type=int)

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; markers and padding are dropped."""
        return self._sp.decode([i for i in ids if i > EOS_ID])
