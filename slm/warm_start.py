"""Fine-tuning a trained joint model on new data whose labels may differ from its own.

Rasa's ``--finetune`` refuses new intents and entities; here the new model gets every weight
of the old one, and the label-indexed ones (intent and slot output rows, CRF transitions)
are copied row by row for the labels both know. A new intent or entity type starts from a
fresh row; a label the new data no longer has is dropped. The tokenizer is the old one,
grown by a piece for each frequent word it shatters (`slm.vocab_growth`: old ids keep
their rows, new rows start from the pieces they replace); the character vocabulary is the
old one (the character CNN covers unseen words), so nothing learnt is discarded.
"""

from __future__ import annotations

from dataclasses import fields

import torch

from slm.joint import EncoderConfig, JointModel
from slm.nlu import NLUModel
from slm.tokenizer import Tokenizer
from slm.vocab_growth import grow_embeddings

INTENT_ROWS = ("intent_head.3.weight", "intent_head.3.bias")
TAG_ROWS = ("slot_head.3.weight", "slot_head.3.bias", "crf.start", "crf.end")
LABELLED = frozenset({*INTENT_ROWS, *TAG_ROWS, "crf.transitions", "allowed_tags"})
PIECES = "encoder.pieces.weight"


def encoder_config(parent: NLUModel) -> EncoderConfig:
    """The parent's encoder shape (the new model must match it to take its weights)."""
    return EncoderConfig(**{f.name: getattr(parent.model.config, f.name) for f in fields(EncoderConfig)})


@torch.no_grad()
def warm_start(
    model: JointModel, intents: list[str], tags: list[str], tokenizer: Tokenizer, parent: NLUModel
) -> dict[str, int]:
    """Load ``parent``'s weights into ``model`` (labels ``intents``/``tags``, pieces of ``tokenizer``,
    the parent's tokenizer possibly grown); how many labels and pieces were new."""
    old, new = parent.model.state_dict(), model.state_dict()
    new[PIECES].copy_(grow_embeddings(old[PIECES], parent.tokenizer, tokenizer))
    for name, tensor in old.items():
        if name not in LABELLED and name in new and new[name].shape == tensor.shape:
            new[name].copy_(tensor)
    intent_pairs = [(i, parent.intents.index(label)) for i, label in enumerate(intents) if label in parent.intents]
    tag_pairs = [(i, parent.tags.index(label)) for i, label in enumerate(tags) if label in parent.tags]
    for name in INTENT_ROWS:
        for to, source in intent_pairs:
            new[name][to] = old[name][source]
    for name in TAG_ROWS:
        for to, source in tag_pairs:
            new[name][to] = old[name][source]
    for to_row, from_row in tag_pairs:
        for to_col, from_col in tag_pairs:
            new["crf.transitions"][to_row, to_col] = old["crf.transitions"][from_row, from_col]
    model.load_state_dict(new)
    return {
        "new_intents": len(intents) - len(intent_pairs),
        "new_tags": len(tags) - len(tag_pairs),
        "new_pieces": tokenizer.vocab_size - parent.tokenizer.vocab_size,
    }
