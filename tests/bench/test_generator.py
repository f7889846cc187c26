"""The generation benchmark's retrieval baseline and scoring on a tiny set."""

from bench.generator import score
from bench.retrieval import NearestContext
from slm.dialogue_corpora import load_pairs
from tests.conftest import FIXTURES


def test_retrieval_returns_the_reply_of_the_nearest_context():
    pairs = load_pairs(FIXTURES / "tiny_dialogues.jsonl")
    retrieval = NearestContext(pairs[:6])
    assert retrieval.reply([pairs[2].context]) == [pairs[2].response]
    replies = retrieval.reply([p.context for p in pairs[6:]])
    scores = score(pairs[6:], replies)
    assert scores["value_accuracy"] == 0.0 and scores["wrong_value_rate"] == 1.0  # every order number is someone else's
    assert score(pairs, [p.response for p in pairs])["bleu"] == 1.0
