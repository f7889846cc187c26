"""Rendering response templates: variations, buttons, slots, and failures that never crash a turn."""

from pathlib import Path

from bot.responses import BUILTIN_RESPONSES, Response, ResponseRenderer, ResponseVariant
from bot.types import Button


def responses(*variants: ResponseVariant) -> dict[str, Response]:
    named = {"utter_x": Response("utter_x", variants, Path("r.yml"), 1)}
    named["utter_action_failed"] = Response("utter_action_failed", (ResponseVariant(BUILTIN_RESPONSES["utter_action_failed"]),), Path("-"), 0)
    return named


def test_variation_choice_is_seeded():
    variants = tuple(ResponseVariant(f"text {i}") for i in range(5))
    renderer_a, renderer_b = ResponseRenderer(responses(*variants), seed=7), ResponseRenderer(responses(*variants), seed=7)
    picks_a = [renderer_a.render("utter_x", {}).text for _ in range(10)]
    picks_b = [renderer_b.render("utter_x", {}).text for _ in range(10)]
    assert picks_a == picks_b
    assert len(set(picks_a)) > 1


def test_slots_and_buttons_are_rendered():
    variant = ResponseVariant("Order {{ order_id }} is {{ order.status }}", (Button("Track {{ order_id }}", '/order_status{"order_id": "{{ order_id }}"}'),))
    reply = ResponseRenderer(responses(variant)).render("utter_x", {"order_id": "A-1042", "order": {"status": "shipped"}})
    assert reply.text == "Order A-1042 is shipped"
    assert reply.buttons == (Button("Track A-1042", '/order_status{"order_id": "A-1042"}'),)
    assert reply.response == "utter_x" and reply.source == "template"


def test_text_is_not_html_escaped_and_extra_buttons_are_appended():
    reply = ResponseRenderer(responses(ResponseVariant("{{ v }}"))).render("utter_x", {"v": "<b>&"}, (Button("a", "/a"),))
    assert reply.text == "<b>&"
    assert reply.buttons == (Button("a", "/a"),)


def test_undefined_variable_at_run_time_gives_the_failure_reply():
    reply = ResponseRenderer(responses(ResponseVariant("Hi {{ name }}"))).render("utter_x", {})
    assert reply.response == "utter_action_failed"
    assert "name" in reply.data["render_error"]
