"""The traced forward pass a server parses with reads every batch as the eager model does."""

import random

import pytest
import torch

from slm.nlu import NLUModel
from slm.traced import TracedJoint

TEXTS = [
    "hi",
    "where is my order?",
    "B-2001",
    "I want to return the yoga mat from C-3310",
    "jane@example.com",
    "",  # no word at all: only the padding piece
    "...",
    "ünïcödé 東京 🙂",  # characters and pieces the model never saw
    "order A-1042 please " * 40,  # longer than max_pieces: cut
    "thanks, bye",
]


def _readings(model: NLUModel, texts: list[str]) -> list[tuple]:
    return [
        (p.intent, round(p.confidence, 5), [(e.entity, e.start, e.end, round(e.confidence, 4)) for e in p.entities])
        for p in model.predict(texts)
    ]


def test_traced_model_parses_like_the_eager_one(example_model):
    eager, traced = NLUModel.load(example_model), NLUModel.load(example_model).trace()
    rng = random.Random(0)
    # Batches of one (no padding: the second graph), many (padded), and every text alone.
    batches = [[text] for text in TEXTS] + [[rng.choice(TEXTS) for _ in range(rng.randint(2, 40))] for _ in range(30)]
    for batch in batches:
        assert _readings(traced, batch) == _readings(eager, batch), batch
    assert any(p.entities for p in traced.predict(TEXTS)), "the texts must exercise the slot head too"


def test_trace_examples_must_steer_both_paths(example_model):
    nlu = NLUModel.load(example_model)
    padded, unpadded = nlu.featurize(["hello there, how are you", "hi"]), nlu.featurize(["hi"])
    with pytest.raises(ValueError, match="padding"):
        TracedJoint(nlu.model, unpadded, padded)
    nlu.model.train()
    with pytest.raises(ValueError, match="eval mode"):
        TracedJoint(nlu.model, padded, unpadded)


def test_traced_graphs_follow_the_weights_they_were_traced_with(example_model):
    nlu = NLUModel.load(example_model).trace()
    before = nlu.predict(["where is my order?"])[0].ranking
    with torch.no_grad():
        nlu.model.intent_head[-1].bias[nlu.intents.index("greet")] += 100.0
    after = nlu.predict(["where is my order?"])[0]
    assert before[0]["name"] != "greet" and after.intent == "greet"
