"""Growing a trained model's vocabulary for words its tokenizer shatters, keeping every old id.

A deployed bot meets words its author never wrote (product names, new slang). The old
SentencePiece model still spells them, but in many short pieces whose embeddings say little.
Fine-tuning appends one piece per such frequent word to the old model (old ids keep their
meaning, new ids follow) and starts each new embedding from the mean of the pieces it
replaces, so the warm-started model reads the word as before and can then learn it as one.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

import torch
from sentencepiece import sentencepiece_model_pb2 as model_pb2

from slm.tokenizer import SPACE, WORD, Tokenizer, fold_case

MIN_COUNT = 2
"""A word must occur in this many distinct training texts to earn a piece (one-offs are noise)."""
MIN_PIECES = 3
"""...and the old tokenizer must split it into at least this many pieces."""
SCORE_MARGIN = 1.0
"""How much a new piece's score beats the old segmentation of its word, so the word is one piece."""


def shattered_words(tokenizer: Tokenizer, texts: Iterable[str], limit: int) -> list[str]:
    """Frequent (case-folded) words that ``tokenizer`` splits into many pieces, most frequent first.

    Counted over distinct texts: retraining repeats each annotated message (`annotation_weight`),
    which made every word of a single message look frequent. A piece for a title or name seen in
    one message is a shortcut: it occurs only in the new intent's examples, the model learns the
    intent from the piece, and unseen titles are then read as the old look-alike intents (see the
    learning benchmark's new intents in the README).
    """
    distinct = dict.fromkeys(texts)
    counts = Counter(fold_case(word) for text in distinct for word in WORD.findall(text) if word.isalnum())
    words = [
        word
        for word, count in counts.most_common()
        if count >= MIN_COUNT and len(tokenizer.pieces_of(word)) >= MIN_PIECES
    ]
    return words[:limit]


def grow_tokenizer(tokenizer: Tokenizer, words: list[str]) -> Tokenizer:
    """``tokenizer`` plus one piece per word, appended after the existing ids.

    Each new piece scores a margin above the best old segmentation of its word, so the
    unigram model's Viterbi search picks it for that word (and as a prefix of longer words).
    """
    proto = model_pb2.ModelProto()
    proto.ParseFromString(tokenizer.model_proto)
    known = {piece.piece for piece in proto.pieces}
    for word in words:
        piece = SPACE + word
        if piece in known:
            continue
        known.add(piece)
        score = sum(tokenizer.score(p) for p in tokenizer.pieces_of(word)) + SCORE_MARGIN
        proto.pieces.add(piece=piece, score=score, type=model_pb2.ModelProto.SentencePiece.NORMAL)
    return Tokenizer(proto.SerializeToString())


@torch.no_grad()
def grow_embeddings(old: torch.Tensor, old_tokenizer: Tokenizer, new_tokenizer: Tokenizer) -> torch.Tensor:
    """Piece embeddings for ``new_tokenizer``: old rows as they were, each new row the mean of the
    old embeddings of the pieces the old tokenizer spelled its word with."""
    rows = [old]
    for new_id in range(old_tokenizer.vocab_size, new_tokenizer.vocab_size):
        word = new_tokenizer.piece(new_id).removeprefix(SPACE)
        ids = [old_tokenizer.piece_id(p) for p in old_tokenizer.pieces_of(word)]
        rows.append(old[ids].mean(dim=0, keepdim=True))
    return torch.cat(rows)
