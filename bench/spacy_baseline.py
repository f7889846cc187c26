"""The spaCy 3 baseline: a blank English pipeline with textcat + ner trained from scratch on CPU.

Words come from the same whitespace tokenisation as the gold data, so both systems are
scored on identical tokens and character spans.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Callable, Sequence

from slm.examples import Example, Span


def make_doc(nlp, text: str):
    """A Doc of the text's whitespace tokens (the gold data's tokenisation)."""
    from spacy.tokens import Doc

    return Doc(nlp.vocab, words=text.split(" "))


def _training_examples(nlp, examples: Sequence[Example], intents: list[str]):
    from spacy.training import Example as SpacyExample

    converted = []
    for example in examples:
        doc = make_doc(nlp, example.text)
        entities = [(s.start, s.end, s.label) for s in example.spans]
        cats = {intent: float(intent == example.intent) for intent in intents}
        converted.append(SpacyExample.from_dict(doc, {"entities": entities, "cats": cats}))
    return converted


def predict(nlp, texts: Sequence[str], batch_size: int = 256) -> list[tuple[str, tuple[Span, ...]]]:
    """Intent and spans for each text."""
    docs = nlp.pipe((make_doc(nlp, t) for t in texts), batch_size=batch_size)
    return [
        (max(doc.cats, key=doc.cats.get), tuple(Span(e.start_char, e.end_char, e.label_) for e in doc.ents))
        for doc in docs
    ]


def train_spacy(
    train: Sequence[Example], dev: Sequence[Example], out: Path, seed: int = 0, max_epochs: int = 15, patience: int = 3,
    log: Callable[[str], None] = lambda _: None,
):
    """Train with spaCy's defaults (compounding batch sizes, dropout 0.2), early-stopped on dev.

    At most 15 epochs: one SNIPS epoch takes minutes on one core, and dev scores have
    flattened by then.
    """
    import spacy
    from spacy.util import compounding, fix_random_seed, minibatch

    from slm.metrics import nlu_scores

    fix_random_seed(seed)
    nlp = spacy.blank("en")
    nlp.add_pipe("textcat")
    nlp.add_pipe("ner")
    intents = sorted({e.intent for e in train})
    examples = _training_examples(nlp, train, intents)
    optimizer = nlp.initialize(lambda: examples)
    rng = random.Random(seed)
    best, best_bytes, stale = -1.0, None, 0
    started = time.perf_counter()
    for _ in range(max_epochs):
        rng.shuffle(examples)
        for batch in minibatch(examples, size=compounding(4.0, 32.0, 1.001)):
            nlp.update(batch, drop=0.2, sgd=optimizer)
        predicted = predict(nlp, [e.text for e in dev])
        scores = nlu_scores(dev, [p[0] for p in predicted], [p[1] for p in predicted])
        score = scores["intent_accuracy"] + scores["slot_f1"] + scores["frame_accuracy"]
        log(f"  spacy epoch: {score:.4f}")
        if score > best:
            best, best_bytes, stale = score, nlp.to_bytes(), 0
        else:
            stale += 1
            if stale >= patience:
                break
    seconds = time.perf_counter() - started
    nlp.from_bytes(best_bytes)
    nlp.to_disk(out)
    return nlp, seconds
