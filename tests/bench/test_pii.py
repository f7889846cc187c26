"""The PII benchmark's generator and scorer: gold spans point at the data, the report has its keys."""

from bench.pii import generate, score
from bot.privacy import Redactor, iban_valid, luhn_valid


def test_generated_gold_spans_hold_valid_personal_data():
    messages = generate(300, seed=1)
    kinds = set()
    for text, gold in messages:
        for start, end, kind in gold:
            value = text[start:end]
            kinds.add(kind)
            if kind == "CARD":
                assert luhn_valid(value.replace(" ", "").replace("-", ""))
            if kind == "IBAN":
                assert iban_valid(value)
            if kind == "EMAIL":
                assert "@" in value
    assert kinds == {"EMAIL", "PHONE", "CARD", "IBAN"}
    assert any(not gold for _, gold in messages)  # look-alike-only messages exist too


def test_score_reports_recall_and_precision_per_kind():
    result = score(Redactor(), generate(200, seed=2))
    assert result["messages"] == 200
    for kind in ("EMAIL", "PHONE", "CARD", "IBAN", "all"):
        assert set(result[kind]) == {"recall", "precision", "n"} and 0 <= result[kind]["recall"] <= 1
    assert 0 <= result["untouched_without_pii"] <= 1
