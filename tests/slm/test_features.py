import subprocess
import sys

import torch

from slm.features import CharVocab, hashed_ngrams, make_batch
from slm.tokenizer import Tokenizer


def test_ngram_hashing_is_stable_across_processes():
    """Python's hash() is salted per process; the model's features must not be."""
    here = hashed_ngrams("Where is order A-1042", 2**14)
    code = "from slm.features import hashed_ngrams; print(hashed_ngrams('Where is order A-1042', 2**14))"
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert str(here) == there.strip()
    assert hashed_ngrams("WHERE is order a-1042", 2**14) == here  # case-folded


def test_batch_truncates_at_word_boundaries():
    tokenizer = Tokenizer.train(["one two three four five six"] * 10, vocab_size=40)
    chars = CharVocab.build(["one two three four five six"])
    texts = ["one two three four five six", "one", ""]
    encodings = [tokenizer.encode(t) for t in texts]
    cut = len(encodings[0].ids) - 1  # the last word loses a piece, so it is dropped whole
    batch = make_batch(texts, encodings, chars, max_pieces=cut, max_word_chars=8, pad_id=0, ngram_buckets=64)
    assert batch.pieces.shape == (3, cut)
    assert batch.word_mask.sum(1).tolist() == [5, 1, 1]
    assert batch.mask.sum(1).tolist() == [cut, len(encodings[1].ids), 1]
    assert torch.allclose(batch.word_pool.sum(-1), batch.word_mask.float())
    assert batch.ngram_offsets.tolist()[0] == 0 and len(batch.ngram_offsets) == 3


def test_a_first_word_longer_than_max_pieces_is_kept_cut_short():
    tokenizer = Tokenizer.train(["one two three four five six"] * 10, vocab_size=40)
    chars = CharVocab.build(["one two three"])
    text = "x" * 300 + " one"
    encoding = tokenizer.encode(text)
    batch = make_batch([text], [encoding], chars, max_pieces=8, max_word_chars=8, pad_id=0, ngram_buckets=64)
    assert batch.pieces.shape == (1, 8)
    assert batch.word_mask.sum().item() == 1
    assert torch.allclose(batch.word_pool.sum(-1), batch.word_mask.float())
