"""The pure flow engine, driven with hand-made parses: no model, no database, no I/O."""

import pytest

from bot.actions import ActionResult
from bot.conversation_tests import load_tests
from bot.domain import load_valid_domain
from bot.flow_spec import SlotSpec
from bot.flows import DialogueState, FlowEngine, Frame, Generate, HandOff, Policy, Respond, RunAction, SlotSet, validate_value
from bot.types import Entity, Parse
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def engine() -> FlowEngine:
    return FlowEngine(load_valid_domain(ROOT), Policy(fallback_threshold=0.5, ambiguity_margin=0.05, max_failures=2))


def parse(intent: str, confidence: float = 0.95, runner_up: tuple[str, float] = ("greet", 0.01), text: str = "", **entities: str) -> Parse:
    found = tuple(Entity(name, value, 0, len(value), value) for name, value in entities.items())
    return Parse(text or intent, intent, confidence, ((intent, confidence), runner_up), found)


def responses(decision) -> list[str]:
    return [c.response for c in decision.commands if isinstance(c, Respond)]


def finish_action(engine, decision, data=None, error=None):
    """Answer the pending action (as the orchestrator would) and return the next decision."""
    assert decision.pending is not None
    return engine.on_action_result(decision.state, ActionResult(data or {}, error))


def test_trigger_with_entity_validates_then_runs_steps(engine):
    decision = engine.on_message(DialogueState(), parse("order_status", order_id="b-2001"))
    action = decision.pending
    assert isinstance(action, RunAction) and action.action == "validate_order_id" and action.value == "b-2001"
    decision = finish_action(engine, decision, {"valid": True, "value": "B-2001", "contents": "blender"})
    assert decision.pending.action == "lookup_order"
    assert decision.pending.slots == {"order_id": "B-2001"}
    decision = finish_action(engine, decision, {"status": "shipped", "contents": "blender", "carrier": "DHL", "eta": "tomorrow"})
    assert responses(decision) == ["utter_order_shipped"]
    assert decision.commands[0].context["order"]["carrier"] == "DHL"
    assert decision.state.stack == [] and decision.state.last_flow.flow == "order_status"


def test_missing_slot_is_asked_and_a_bad_pattern_is_explained(engine):
    decision = engine.on_message(DialogueState(), parse("order_status"))
    assert responses(decision) == ["utter_ask_order_id"]
    assert decision.state.stack[0].asking == "order_id"
    decision = engine.on_message(decision.state, parse("inform", order_id="12345"))
    assert responses(decision) == ["utter_unknown_order", "utter_ask_order_id"]
    assert decision.commands[0].context["value"] == "12345"


def test_validator_rejection_keeps_asking(engine):
    decision = engine.on_message(DialogueState(), parse("refund_status", order_id="Z-9999"))
    decision = finish_action(engine, decision, {"valid": False})
    assert responses(decision) == ["utter_unknown_order", "utter_ask_order_id"]
    assert "order_id" not in decision.state.stack[0].slots


def test_several_slots_in_one_message(engine):
    decision = engine.on_message(DialogueState(), parse("change_address", order_id="E-5090", address="9 Mill Road, York"))
    decision = finish_action(engine, decision, {"valid": True, "value": "E-5090"})
    assert decision.pending.action == "change_address"
    assert decision.pending.slots == {"order_id": "E-5090", "address": "9 Mill Road, York"}


def test_from_text_fills_the_asked_slot_but_not_on_a_correction(engine):
    state = engine.on_message(DialogueState(), parse("change_address")).state
    state = finish_action(engine, engine.on_message(state, parse("inform", order_id="H-8034")), {"valid": True}).state
    assert state.stack[0].asking == "address"
    decision = engine.on_message(state, parse("inform", text="sorry, I meant E-5090", order_id="E-5090"))
    decision = finish_action(engine, decision, {"valid": True})
    assert responses(decision) == ["utter_ask_address"]
    assert decision.state.stack[0].slots == {"order_id": "E-5090"}
    decision = engine.on_message(decision.state, parse("inform", confidence=0.3, text="9 Mill Road, York"))
    assert decision.pending.slots["address"] == "9 Mill Road, York"


def test_digression_answer_then_resume_prompt(engine):
    state = engine.on_message(DialogueState(), parse("order_status")).state
    decision = engine.on_message(state, parse("opening_hours"))
    assert responses(decision) == ["utter_opening_hours", "utter_ask_order_id"]
    assert decision.state.stack[0].flow == "order_status"


def test_digression_into_another_flow_returns_to_the_first(engine):
    state = engine.on_message(DialogueState(), parse("return_item")).state
    decision = engine.on_message(state, parse("product_availability", product="blender"))
    assert [f.flow for f in decision.state.stack] == ["return_item", "product_availability"]
    decision = finish_action(engine, decision, {"known": True, "in_stock": True, "price": "59.90 EUR"})
    assert responses(decision) == ["utter_in_stock", "utter_ask_order_id"]
    assert [f.flow for f in decision.state.stack] == ["return_item"]


def test_correction_after_a_flow_ends_reruns_it(engine):
    decision = engine.on_message(DialogueState(), parse("refund_status", order_id="C-3310"))
    decision = finish_action(engine, decision, {"valid": True})
    state = finish_action(engine, decision, {"status": "none"}).state
    decision = engine.on_message(state, parse("inform", order_id="G-7123"))
    assert decision.pending.action == "validate_order_id" and decision.pending.value == "G-7123"


def test_cancel_clears_the_open_flow(engine):
    state = engine.on_message(DialogueState(), parse("cancel_order")).state
    decision = engine.on_message(state, parse("stop"))
    assert responses(decision) == ["utter_flow_cancelled"]
    assert decision.state.stack == []


def test_bool_slot_from_intent_and_branch(engine):
    decision = engine.on_message(DialogueState(), parse("cancel_order", order_id="A-1042"))
    decision = finish_action(engine, decision, {"valid": True})
    assert responses(decision) == ["utter_confirm_cancel"]
    decision = engine.on_message(decision.state, parse("deny"))
    assert SlotSet("confirm_cancel", False) in decision.commands
    assert responses(decision) == ["utter_cancel_kept"]
    assert decision.pending is None


def test_low_confidence_offers_two_intents_then_hands_off(engine):
    unsure = parse("cancel_order", confidence=0.4, runner_up=("order_status", 0.35))
    decision = engine.on_message(DialogueState(), unsure)
    clarify = decision.commands[0]
    assert clarify.response == "utter_clarify"
    assert [b.payload for b in clarify.buttons] == ["/cancel_order", "/order_status"]
    assert [b.title for b in clarify.buttons] == ["Cancel an order", "Track an order"]
    decision = engine.on_message(decision.state, unsure)
    assert responses(decision) == ["utter_handoff"]
    assert any(isinstance(c, HandOff) for c in decision.commands)
    assert decision.state.handed_off


def test_ambiguous_top_two_count_as_not_understood(engine):
    decision = engine.on_message(DialogueState(), parse("cancel_order", confidence=0.51, runner_up=("order_status", 0.49)))
    assert responses(decision) == ["utter_clarify"]


def test_handed_off_conversation_is_silent(engine):
    state = engine.on_message(DialogueState(), parse("human_handoff")).state
    assert state.handed_off
    decision = engine.on_message(state, parse("greet"))
    assert decision.commands == []


def test_failed_action_gives_the_failure_reply_and_drops_the_flow(engine):
    decision = engine.on_message(DialogueState(), parse("product_availability", product="blender"))
    decision = finish_action(engine, decision, error="action 'check_stock' timed out after 10 s")
    assert responses(decision) == ["utter_action_failed"]
    assert decision.state.stack == []


def test_state_round_trips_through_json(engine):
    import json

    state = engine.on_message(DialogueState(), parse("return_item", product="blender")).state
    restored = DialogueState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored == state


def test_the_engine_never_changes_the_state_it_was_given(engine):
    state = engine.on_message(DialogueState(), parse("return_item", product="blender")).state
    before = state.to_dict()
    after = engine.on_message(state, parse("inform", order_id="C-3310")).state
    assert state.to_dict() == before and after.to_dict() != before
    copied = state.copy()
    assert copied == state
    copied.stack[0].slots["note"] = "changed"
    assert "note" not in state.stack[0].slots  # a copy shares nothing with its original



def test_a_copy_shares_no_nested_value_with_its_original():
    state = DialogueState(stack=[Frame("return_item", results={"order": {"items": ["mat"]}}, validating=[["order_id", "C-1"]])])
    copied = state.copy()
    copied.stack[0].results["order"]["items"].append("bottle")
    copied.stack[0].validating[0].append("x")
    assert state.stack[0].results == {"order": {"items": ["mat"]}}
    assert state.stack[0].validating == [["order_id", "C-1"]]

def test_unknown_intent_without_flow_gets_the_default_reply(engine):
    assert responses(engine.on_message(DialogueState(), parse("inform"))) == ["utter_default"]


@pytest.mark.parametrize(
    "spec, raw, expected",
    [
        (SlotSpec("n", "p", type="int"), "4", 4),
        (SlotSpec("n", "p", type="int"), "four", None),
        (SlotSpec("b", "p", type="bool"), "yes", True),
        (SlotSpec("e", "p", type="email"), "a@b.co", "a@b.co"),
        (SlotSpec("e", "p", type="email"), "nope", None),
        (SlotSpec("c", "p", choices=("Red", "Blue")), "blue", "Blue"),
        (SlotSpec("c", "p", choices=("Red", "Blue")), "green", None),
        (SlotSpec("o", "p", pattern=r"[A-Z]-\d{4}"), "A-1042", "A-1042"),
        (SlotSpec("o", "p", pattern=r"[A-Z]-\d{4}"), "A-10", None),
    ],
)
def test_validate_value(spec, raw, expected):
    assert validate_value(spec, raw) == expected


def test_the_example_domain_has_what_the_issue_asks_for():
    domain = load_valid_domain(ROOT)
    assert len(domain.intents) >= 15
    assert len(set(domain.entities)) >= 4
    assert sum(1 for flow in domain.flows.values() if flow.slots) >= 6
    assert len(load_tests(ROOT / "tests" / "conversations")) >= 25


@pytest.fixture(scope="module")
def generating(tmp_path_factory) -> FlowEngine:
    """The example domain plus a flow with a `generate` step, on an engine that has a generator."""
    from bot.flow_spec import FlowCompiler
    from bot.yaml_source import load_yaml

    domain = load_valid_domain(ROOT)
    path = tmp_path_factory.mktemp("gen") / "extra.yml"
    path.write_text("flows:\n  chat:\n    trigger: bot_challenge\n    steps:\n      - generate: utter_iamabot\n      - respond: utter_anything_else\n")
    problems = []
    domain.flows["chat"] = FlowCompiler(path, problems).compile("chat", load_yaml(path)["flows"]["chat"], 2)
    assert not problems
    return FlowEngine(domain, Policy(max_failures=2), can_generate=True)


def test_unhandled_intent_asks_the_generator_and_falls_back_to_the_default(generating):
    decision = generating.on_message(DialogueState(), parse("inform"))
    assert isinstance(decision.pending, Generate) and decision.pending.facts == ("intent inform",)
    assert generating.on_generated(decision.state, passed=True).commands == []
    assert responses(generating.on_generated(decision.state, passed=False)) == ["utter_default"]


def test_generator_comes_before_a_handoff_and_the_handoff_follows_a_rejection(generating):
    unsure = parse("cancel_order", confidence=0.3, runner_up=("order_status", 0.29))
    state = generating.on_message(DialogueState(), unsure).state
    decision = generating.on_message(state, unsure)
    assert isinstance(decision.pending, Generate) and not decision.state.handed_off
    kept = generating.on_generated(decision.state, passed=True)
    assert not kept.state.handed_off and kept.state.failures == 0
    rejected = generating.on_generated(decision.state, passed=False)
    assert responses(rejected) == ["utter_handoff"] and rejected.state.handed_off


def test_generate_step_in_a_flow_continues_either_way(generating):
    decision = generating.on_message(DialogueState(), parse("bot_challenge"))
    assert isinstance(decision.pending, Generate) and decision.pending.facts == ("flow chat",)
    assert responses(generating.on_generated(decision.state, passed=True)) == ["utter_anything_else"]
    assert responses(generating.on_generated(decision.state, passed=False)) == ["utter_iamabot", "utter_anything_else"]


def test_generate_step_without_a_generator_uses_its_fallback(generating):
    plain = FlowEngine(generating.domain, Policy())
    assert responses(plain.on_message(DialogueState(), parse("bot_challenge"))) == ["utter_iamabot", "utter_anything_else"]
