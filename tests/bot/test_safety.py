"""The safety gate for generated replies."""

import pytest

from bot.safety import SafetyGate, template_words

CONTEXT = "user: where is my order?\nbot: What's your order number?\nfact: intent inform ; order_id B-2001\nuser: B-2001"
GATE = SafetyGate(
    min_score=-1.0,
    known_values=frozenset({"blender", "yoga mat"}),
    known_words=template_words(["Hi! I'm the Northwind Shop assistant.", "Order numbers look like A-1042."]),
)


def test_passes_a_reply_whose_values_all_come_from_the_context():
    assert GATE.check("Your order B-2001 is on its way. Northwind thanks you!", -0.4, CONTEXT) is None


def test_values_from_the_bots_own_templates_are_allowed():
    assert GATE.check("Order numbers look like A-1042.", -0.2, CONTEXT) is None


@pytest.mark.parametrize(
    "text, score, reason",
    [
        ("Your order B-2009 is on its way.", -0.3, "states 'B-2009', which is not in the context"),
        ("It costs 59.90 EUR.", -0.3, "states '59.90', which is not in the context"),
        ("Write to help@shop.example please.", -0.3, "states 'help@shop.example', which is not in the context"),
        ("The blender ships tomorrow.", -0.3, "mentions 'blender', which is not in the context"),
        ("Your order is with Hermes now.", -0.3, "names 'Hermes', which is neither in the context nor in the bot's templates"),
        ("Your order B-2001 is late.", -1.5, "score -1.50 is below -1.00"),
        ("sorry sorry sorry", -0.1, "repetitive reply"),
        ("the order is the order is late", -0.1, "repetitive reply"),
        ("  ...  ", -0.1, "empty reply"),
    ],
)
def test_rejects(text, score, reason):
    assert GATE.check(text, score, CONTEXT) == reason
