"""Nearest-context retrieval: the generation baseline and the generator's exemplars."""

from bench.generator import score
from slm.dialogue_corpora import load_pairs
from slm.exemplars import ExemplarIndex
from tests.conftest import FIXTURES


def index_of(pairs):
    return ExemplarIndex([p.context for p in pairs], [p.response for p in pairs])


def test_retrieval_returns_the_reply_of_the_nearest_context():
    pairs = load_pairs(FIXTURES / "tiny_dialogues.jsonl")
    index = index_of(pairs[:6])
    assert index.reply([pairs[2].context]) == [pairs[2].response]
    replies = index.reply([p.context for p in pairs[6:]])
    scores = score(pairs[6:], replies)
    assert scores["value_accuracy"] == 0.0 and scores["wrong_value_rate"] == 1.0  # every order number is someone else's
    assert score(pairs, [p.response for p in pairs])["bleu"] == 1.0


def test_exclude_self_finds_a_neighbour_and_augment_adds_its_reply_before_the_newest_turn():
    pairs = load_pairs(FIXTURES / "tiny_dialogues.jsonl")
    index = index_of(pairs)
    contexts = [p.context for p in pairs]
    assert all(found != i for i, found in enumerate(index.nearest(contexts, exclude_self=True)))
    augmented = index.augment([contexts[0]], exclude_self=False)[0].split("\n")
    assert augmented[-2] == f"fact: similar reply {pairs[0].response}"
    assert augmented[-1] == "user: where is my order?"
