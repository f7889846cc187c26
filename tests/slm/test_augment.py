"""Entity-value substitution: variants keep their sentence and move their spans with the values."""

from slm.augment import EntitySwap
from slm.examples import Example, Span
from slm.nlu_training import ExampleEncoder, tag_names
from slm.tokenizer import Tokenizer

EXAMPLES = [
    Example("play yellow by coldplay please", "PlayMusic", (Span(5, 11, "track"), Span(15, 23, "artist"))),
    Example("play the long and winding road", "PlayMusic", (Span(5, 30, "track"),)),
    Example("put on something by the rolling stones", "PlayMusic", (Span(20, 38, "artist"),)),
    Example("hello there", "Greet"),
]


def test_every_entity_takes_a_value_of_its_type_and_the_rest_of_the_text_stays():
    swap = EntitySwap(EXAMPLES, probability=1.0, seed=0)
    seen = set()
    for _ in range(50):
        variant = swap(EXAMPLES[0])
        assert variant.intent == "PlayMusic"
        track, artist = sorted(variant.spans)
        assert variant.text[track.start : track.end] in {"yellow", "the long and winding road"}
        assert variant.text[artist.start : artist.end] in {"coldplay", "the rolling stones"}
        assert variant.text.startswith("play ")
        assert variant.text[track.end : artist.start] == " by "
        assert variant.text[artist.end :] == " please"
        seen.add(variant.text)
    assert len(seen) == 4  # all combinations of two values for each of two entities


def test_no_entities_or_no_chance_leaves_the_example_itself():
    assert EntitySwap(EXAMPLES, probability=1.0, seed=0)(EXAMPLES[3]) is EXAMPLES[3]
    swap = EntitySwap(EXAMPLES, probability=0.0, seed=0)
    assert all(swap(e) is e for e in EXAMPLES)


def test_the_same_seed_draws_the_same_variants():
    first, second = EntitySwap(EXAMPLES, 0.5, seed=3), EntitySwap(EXAMPLES, 0.5, seed=3)
    assert [first(e) for e in EXAMPLES * 10] == [second(e) for e in EXAMPLES * 10]


def test_a_variant_the_words_cannot_express_keeps_the_original():
    examples = [
        Example("it costs $5 now", "Price", (Span(9, 10, "currency"), Span(10, 11, "amount"))),
        Example("it costs usd 7", "Price", (Span(9, 12, "currency"), Span(13, 14, "amount"))),
    ]
    tokenizer = Tokenizer.train([e.text for e in examples] * 20, vocab_size=40)
    encoder = ExampleEncoder(tokenizer, ["Price"], tag_names(examples))
    originals = encoder.all(examples[:1])
    swap = EntitySwap(examples, probability=1.0, seed=0)
    drawn = [encoder.variants(originals, swap)[0] for _ in range(40)]
    # "usd" glued to the amount ("usd5") is one word: that draw falls back to the original.
    assert any(item is originals[0] for item in drawn)
    variants = [item for item in drawn if item is not originals[0]]
    assert variants and all(item.source == "it costs $5 now" for item in variants)
    assert all(item.example.text in {"it costs $7 now", "it costs $5 now"} for item in variants)
