"""Fine-tuning a trained joint model on new data whose labels may differ from its own.

Rasa's ``--finetune`` refuses new intents and entities; here the new model gets every weight
of the old one, and the label-indexed ones (intent and slot output rows, CRF transitions)
are copied row by row for the labels both know. A new entity type starts from a fresh row, a
new intent from its examples (`imprint_new_intents`); a label the new data no longer has is
dropped. Optionally, when new intents arrive, the old intents' examples also learn the
parent's own intent distribution (`parent_targets`, knowledge distillation), so that a
newcomer takes fewer of its neighbours' messages. The tokenizer is the old one,
grown by a piece for each frequent word it shatters (`slm.vocab_growth`: old ids keep
their rows, new rows start from the pieces they replace); the character vocabulary is the
old one (the character CNN covers unseen words), so nothing learnt is discarded.
"""

from __future__ import annotations

from dataclasses import fields

import torch

from slm.joint import DISTILL_TEMPERATURE, EncoderConfig, JointModel
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


@torch.no_grad()
def imprint_new_intents(nlu: NLUModel, texts_by_intent: dict[str, list[str]], new_intents: list[str]) -> None:
    """Start each new intent's output row from its examples (weight imprinting) instead of noise.

    The row becomes the mean hidden vector of the intent head on the intent's training texts,
    scaled to the old rows' mean norm, with the old rows' mean bias: the new intent scores like
    the old ones on messages that look like its examples from the first step of fine-tuning.
    """
    head = nlu.model.intent_head
    weight, bias = head[3].weight, head[3].bias
    old = [i for i, name in enumerate(nlu.intents) if name not in new_intents]
    if not old:
        return
    hidden: list[torch.Tensor] = []
    hook = head[2].register_forward_hook(lambda _module, _inputs, output: hidden.append(output.float()))
    was_training = nlu.model.training
    nlu.model.eval()
    try:
        for name in new_intents:
            hidden.clear()
            nlu.logits(texts_by_intent[name])
            mean = torch.cat(hidden).mean(0)
            row = nlu.intents.index(name)
            weight[row] = (mean / mean.norm().clamp_min(1e-6) * weight[old].norm(dim=1).mean()).to(weight.dtype)
            bias[row] = bias[old].mean()
    finally:
        hook.remove()
        nlu.model.train(was_training)


@torch.no_grad()
def parent_targets(
    parent: NLUModel, texts: list[str], gold: list[str], intents: list[str], weight: float = 1.0
) -> dict[str, torch.Tensor]:
    """The parent's softened intent distribution (over ``intents``: zero on intents it lacks)
    for each text it already reads right, keyed by text; each sums to ``weight``, its share of
    the loss next to the gold label's. ``parent`` is a trained model, so in eval mode.

    Messages the parent gets wrong (corrections, typically) and those of intents it lacks keep
    their gold label alone: distilling there would pull towards the parent's mistake.
    """
    distinct = sorted({t for t, g in zip(texts, gold) if g in parent.intents})
    if not distinct:
        return {}
    label_of = dict(zip(texts, gold))
    logits = parent.logits(distinct)
    columns = torch.tensor([intents.index(name) for name in parent.intents])
    soft = torch.zeros(len(distinct), len(intents))
    soft[:, columns] = torch.softmax(logits / DISTILL_TEMPERATURE, dim=-1) * weight
    right = logits.argmax(-1).tolist()
    return {text: soft[row] for row, text in enumerate(distinct) if parent.intents[right[row]] == label_of[text]}
