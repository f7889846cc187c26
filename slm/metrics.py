"""Scores: intent accuracy, span-level slot F1 (conlleval semantics), frame accuracy, OOS; BLEU and
entity-value accuracy of generated replies."""

from __future__ import annotations

from typing import Sequence

from slm.dialogue_corpora import DialoguePair, mentioned
from slm.examples import Example, Span


def span_f1(gold: Sequence[Sequence[Span]], predicted: Sequence[Sequence[Span]]) -> dict[str, float]:
    """Micro precision/recall/F1 over exact (start, end, label) matches, as conlleval counts chunks."""
    gold_set = {(i, s) for i, spans in enumerate(gold) for s in spans}
    pred_set = {(i, s) for i, spans in enumerate(predicted) for s in spans}
    correct = len(gold_set & pred_set)
    precision = correct / len(pred_set) if pred_set else 0.0
    recall = correct / len(gold_set) if gold_set else 0.0
    f1 = 2 * precision * recall / (precision + recall) if correct else 0.0
    return {"slot_precision": precision, "slot_recall": recall, "slot_f1": f1}


def nlu_scores(
    gold: Sequence[Example],
    intents: Sequence[str],
    spans: Sequence[Sequence[Span]],
    oos_label: str | None = None,
) -> dict[str, float]:
    """All NLU scores for predictions aligned with ``gold``.

    With ``oos_label``, also in-scope accuracy (intent accuracy on in-scope utterances) and
    OOS recall (share of out-of-scope utterances predicted as such).
    """
    n = len(gold)
    intent_right = [g.intent == p for g, p in zip(gold, intents, strict=True)]
    frames = [ok and set(g.spans) == set(s) for ok, g, s in zip(intent_right, gold, spans)]
    scores: dict[str, float] = {
        "intent_accuracy": sum(intent_right) / n if n else 0.0,
        **span_f1([g.spans for g in gold], spans),
        "frame_accuracy": sum(frames) / n if n else 0.0,
        "n": n,
    }
    if oos_label is not None:
        in_scope = [ok for g, ok in zip(gold, intent_right) if g.intent != oos_label]
        out_scope = [ok for g, ok in zip(gold, intent_right) if g.intent == oos_label]
        scores["in_scope_accuracy"] = sum(in_scope) / len(in_scope) if in_scope else 0.0
        scores["oos_recall"] = sum(out_scope) / len(out_scope) if out_scope else 0.0
    return scores


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """sacrebleu's corpus BLEU (13a tokenisation, case-sensitive) on a 0-1 scale."""
    import sacrebleu

    return sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score / 100


def value_scores(pairs: Sequence[DialoguePair], hypotheses: Sequence[str]) -> dict[str, float]:
    """How well replies state entity values.

    ``value_accuracy``: share of the values in the gold replies that the generated replies also
    state; ``wrong_value_rate``: share of the values in the generated replies that the gold
    reply does not state (an invented or wrong name, number, price...).
    """
    gold_total = hit = generated_total = wrong = 0
    for pair, hypothesis in zip(pairs, hypotheses):
        gold, generated = _values(pair.values, pair.response), _values(pair.values, hypothesis)
        gold_total, hit = gold_total + len(gold), hit + len(gold & generated)
        generated_total, wrong = generated_total + len(generated), wrong + len(generated - gold)
    return {
        "value_accuracy": hit / gold_total if gold_total else 0.0,
        "wrong_value_rate": wrong / generated_total if generated_total else 0.0,
    }


def _values(candidates: Sequence[str], text: str) -> set[str]:
    """Values stated in ``text``, a value inside a longer stated one not counted twice."""
    found = mentioned(candidates, text)
    return {v for v in found if not any(v != other and v in other for other in found)}
