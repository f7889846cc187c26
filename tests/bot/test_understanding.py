"""Lexicon (regex, lookup, synonyms) and button payloads, combined with model entities."""

from bot.types import Entity
from bot.understanding import Lexicon, merge_entities, parse_payload
from slm.intents_yaml import load_lexicon_entries
from tests.conftest import ROOT


def test_lookup_prefers_the_longest_match_and_synonyms_map_values():
    lexicon = Lexicon.from_entries(load_lexicon_entries(ROOT / "intents"))
    found = lexicon.matches("do you have Wireless Headphones or a kettle? order b-2001")
    assert [(e.entity, e.text) for e in found] == [("product", "Wireless Headphones"), ("product", "kettle"), ("order_id", "b-2001")]
    assert lexicon.canonical(found[1]).value == "electric kettle"
    assert lexicon.canonical(Entity("product", "headphones", 0, 10, "headphones")).value == "wireless headphones"


def test_lexicon_matches_win_over_overlapping_model_entities():
    model = [Entity("product", "order A", 0, 7, "order A"), Entity("address", "York", 20, 24, "York")]
    matched = [Entity("order_id", "A-1042", 6, 12, "A-1042", extractor="lexicon")]
    assert [e.entity for e in merge_entities(model, matched)] == ["order_id", "address"]


def test_payloads():
    plain = parse_payload("/order_status")
    assert plain.intent == "order_status" and plain.confidence == 1.0 and plain.entities == ()
    with_entities = parse_payload('/order_status{"order_id": "A-1042"}')
    assert with_entities.entity_values() == {"order_id": "A-1042"}
    assert parse_payload("/order_status{not json}") is None
    assert parse_payload("where is my order") is None


def test_payloads_with_a_confidence_as_in_rasa():
    unsure = parse_payload('/order_status@0.3{"order_id": "A-1042"}')
    assert (unsure.intent, unsure.confidence, unsure.ranking) == ("order_status", 0.3, (("order_status", 0.3),))
    assert unsure.entity_values() == {"order_id": "A-1042"}
    assert parse_payload("/order_status@1").confidence == 1.0
    assert parse_payload("/order_status@1.5") is None  # not a probability: ordinary text
    assert parse_payload("/start@shop_bot") is None  # a Telegram command addressed to a bot
