"""`slmbot check`: every problem of a broken project is reported as file:line: message."""

import shutil
from pathlib import Path

import pytest

from bot.domain import DomainError, load_domain, load_valid_domain
from tests.conftest import ROOT


@pytest.fixture
def project(tmp_path) -> Path:
    """A copy of the example bot to break."""
    for folder in ("intents", "dialogues"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def messages(project: Path) -> list[str]:
    return [str(p) for p in load_domain(project)[1] if p.error]


def replace(path: Path, old: str, new: str) -> int:
    """Edit ``path``; returns the 1-based line where ``old`` was."""
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return text[: text.index(old)].count("\n") + 1


def test_the_example_project_is_clean():
    domain, problems = load_domain(ROOT)
    assert [p for p in problems if p.error] == []
    assert len(domain.flows) >= 6


def test_unknown_entity_with_suggestion(project):
    line = replace(project / "intents" / "orders.yml", "[A-1042](order_id)", "[A-1042](oder_id)")
    assert f"{project}/intents/orders.yml:{line}: unknown entity 'oder_id' (did you mean 'order_id'?)" in messages(project)


def test_slot_no_entity_fills(project):
    replace(project / "dialogues" / "shop.yml", "        entity: product\n", "        entity: colour\n")
    found = messages(project)
    assert any("shop.yml:" in m and "slot 'product' is filled by entity 'colour', which no example, regex or lookup produces" in m for m in found)


def test_template_syntax_error_names_the_line(project):
    line = replace(project / "dialogues" / "shop.yml", "Which product are you looking for?", "Which {{ product ?")
    found = messages(project)
    assert any(m.startswith(f"{project}/dialogues/shop.yml:{line}: response 'utter_ask_product': template syntax error") for m in found)


def test_undefined_template_variable(project):
    replace(project / "dialogues" / "shop.yml", "the {{ product }} is in stock", "the {{ prodcut }} is in stock")
    assert any("uses undefined variable 'prodcut' (did you mean 'product'?)" in m for m in messages(project))


def test_duplicate_example_across_intents(project):
    with (project / "intents" / "chitchat.yml").open("a") as f:
        f.write("  - intent: thanks\n    examples: |\n      - Hello There\n")
    assert any("example 'Hello There' of intent 'thanks' is also an example of 'greet'" in m for m in messages(project))


def test_unknown_response_and_action_in_a_flow(project):
    line = replace(project / "dialogues" / "shop.yml", "      - action: check_stock", "      - action: check_stok")
    replace(project / "dialogues" / "shop.yml", "respond: utter_in_stock", "respond: utter_in_stok")
    found = messages(project)
    assert f"{project}/dialogues/shop.yml:{line}: flow 'product_availability': unknown action 'check_stok' (did you mean 'check_stock'?)" in found
    assert any("undefined response 'utter_in_stok' (did you mean 'utter_in_stock'?)" in m for m in found)


def test_malformed_yaml_names_file_and_line(project):
    (project / "dialogues" / "broken.yml").write_text("flows:\n  x:\n    trigger: [greet\n")
    assert any(m.startswith(f"{project}/dialogues/broken.yml:") and "invalid YAML" in m for m in messages(project))


def test_broken_actions_module_is_reported(project):
    (project / "dialogues" / "actions.py").write_text("def broken(:\n")
    assert any("dialogues/actions.py:1: syntax error" in m for m in messages(project))


def test_unknown_trigger_intent_and_condition_syntax(project):
    replace(project / "dialogues" / "shop.yml", "trigger: product_availability", "trigger: product_availabilty")
    replace(project / "dialogues" / "shop.yml", "if: stock.in_stock", "if: stock.in_stock ==")
    found = messages(project)
    assert any("trigger intent 'product_availabilty' has no examples (did you mean 'product_availability'?)" in m for m in found)
    assert any("condition 'stock.in_stock ==' does not parse" in m for m in found)


def test_load_valid_domain_raises_with_every_problem(project):
    replace(project / "dialogues" / "shop.yml", "respond: utter_in_stock", "respond: nope_one")
    replace(project / "dialogues" / "shop.yml", "respond: utter_out_of_stock", "respond: nope_two")
    with pytest.raises(DomainError) as error:
        load_valid_domain(project)
    assert "nope_one" in str(error.value) and "nope_two" in str(error.value)
