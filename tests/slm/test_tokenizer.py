from pathlib import Path

import pytest

from slm.datasets import load_examples
from slm.examples import bio_to_spans, spans_to_bio
from slm.tokenizer import Tokenizer
from tests.conftest import ROOT, shared_split


def assert_round_trip(tokenizer: Tokenizer, examples) -> None:
    for example in examples:
        encoding = tokenizer.encode(example.text)
        for units in (encoding.offsets, encoding.words):  # subword pieces, and the words tags live on
            tags = spans_to_bio(example.spans, units)
            assert bio_to_spans(tags, units) == sorted(example.spans), example.text
        for (start, end), piece in zip(encoding.offsets, encoding.ids):
            assert 0 <= start < end <= len(example.text)


@pytest.mark.parametrize("corpus", ["snips", "atis"])
def test_span_bio_round_trip_on_every_training_example(corpus):
    examples = load_examples(shared_split(corpus, "train"))
    tokenizer = Tokenizer.train([e.text for e in examples], vocab_size=4000)
    assert_round_trip(tokenizer, examples)


def test_round_trip_on_the_example_bot():
    examples = load_examples(ROOT / "intents")
    tokenizer = Tokenizer.train([e.text for e in examples], vocab_size=500)
    assert_round_trip(tokenizer, examples)


def test_offsets_survive_unseen_characters_and_case(tmp_path: Path):
    tokenizer = Tokenizer.train(["where is order a-1042", "hello there"] * 20, vocab_size=60)
    text = "Where is ORDER Ωmega-İ42?"
    encoding = tokenizer.encode(text)
    covered = "".join(text[s:e] for s, e in encoding.offsets)
    assert covered == text.replace(" ", "")
    assert tokenizer.unk_id in encoding.ids  # 'Ω' was never seen
    tokenizer.save(tmp_path / "t.model")
    assert Tokenizer.load(tmp_path / "t.model").encode(text) == encoding
