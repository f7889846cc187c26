"""Retraining from annotated logs: a new intent learnt only from annotations, the gate, promotion."""

import dataclasses
import json
import random

import pytest
from PIL import Image

from bot.annotation import Correction, annotate
from bot.config import load_config
from bot.confusion import CELL
from bot.domain import load_valid_domain
from bot.generator_data import annotated_reply_pairs, template_pairs
from bot.privacy import Redactor
from bot.registry import promote, register
from bot.retrain import GateReport, gather, judge, pseudo_labelled, retrain, retrain_if_new
from bot.storage.store import ConversationStore
from bot.storage.tables import Conversation, Event
from slm.datasets import load_examples
from slm.generator import train_generator
from slm.nlu import NLUModel
from tests.conftest import FIXTURES, ROOT

pytestmark = pytest.mark.slow  # two fine-tuning runs of the example bot, about a minute each

GIFT_WRAP = [
    "can you gift wrap my order", "do you offer gift wrapping", "is gift wrapping available", "could you wrap it as a present",
    "can I add a gift message", "please wrap the kettle as a gift", "do you have gift boxes", "gift wrap the yoga mat please",
    "how much is gift wrapping", "can the parcel be wrapped in gift paper", "I'd like it gift wrapped", "add gift wrap to my order",
    "is there a gift wrap option", "wrap it nicely, it's a birthday present", "can you put a ribbon on it", "can you send it as a gift",
    "can I get it wrapped for christmas", "gift packaging possible?", "do you wrap presents", "can you include a gift card with a note",
]


@pytest.fixture
def project(example_model, tmp_path):
    """The example bot with its models and database in a scratch folder, the example model live."""
    config = load_config(ROOT / "config.toml")
    # 47 dev examples and 32 conversation tests: one example is 2-3 points, so a 1-point margin would
    # only measure noise here; 5 points still rejects the shuffled-label candidate by far.
    config = dataclasses.replace(config, models_dir=tmp_path / "models", retrain=dataclasses.replace(config.retrain, margin=0.05))
    store = ConversationStore(f"sqlite:///{tmp_path}/c.db")
    store.migrate()
    live = register(store, "nlu", example_model, config.models_dir)
    promote(store, "nlu", live.version, config.nlu_model_dir)
    yield config, store, live
    store.close()


def log_and_annotate(store: ConversationStore, labelled: list[tuple[str, str]]) -> None:
    """Customers wrote these messages; a reviewer labelled them."""
    for number, (text, intent) in enumerate(labelled):
        conversation = Conversation(id=f"rest:u{number}", channel="rest", sender=f"u{number}")
        event = Event(conversation_id=conversation.id, kind="user", text=text, intent="out_of_scope", confidence=0.4, entities=[])
        store.save_turn(conversation, [event])
        store.annotate(annotate(event, Correction("reviewer", intent=intent, entities=[]), Redactor()))


def test_a_new_intent_learnt_from_annotations_goes_live_and_old_intents_hold(project):
    config, store, live = project
    log_and_annotate(store, [(text, "gift_wrapping") for text in GIFT_WRAP])
    report = retrain(config, store, device="cpu")
    assert report.new_intents == ["gift_wrapping"] and report.sizes["annotated hold-out"] == 4
    live_hold, candidate_hold = report.scores["annotated hold-out"]["intent_accuracy"]
    assert live_hold == 0.0 and candidate_hold >= 0.75, report.to_dict()
    assert report.promoted, report.to_dict()
    with Image.open(report.confusion_png) as image:
        assert image.format == "PNG"
        labels = len({e.intent for e in load_examples(config.nlu.data)} | {"gift_wrapping"})
        assert image.width >= labels * CELL and image.height >= labels * CELL  # one cell per intent, names beside
    active = store.active_model("nlu")
    assert active.version == report.candidate_version and active.parent == live.version
    served = NLUModel.load(config.nlu_model_dir)
    assert "gift_wrapping" in served.intents
    assert served.parse("could you gift wrap the speaker").intent == "gift_wrapping"


def test_the_gate_rejects_a_candidate_trained_on_shuffled_labels(project):
    config, store, live = project
    examples = load_examples(config.nlu.data)
    intents = [e.intent for e in examples]
    random.Random(0).shuffle(intents)
    log_and_annotate(store, [(e.text + " please", intent) for e, intent in zip(examples, intents)])
    report = retrain(config, store, device="cpu")
    assert not report.promoted and report.reasons
    assert store.active_model("nlu").version == live.version  # the live model stays
    assert not list((config.models_dir / "registry").glob(".candidate-*"))


def test_a_retrain_run_is_due_only_when_the_data_changed(project):
    config, store, _ = project
    first = gather(config, store).fingerprint()
    assert gather(config, store).fingerprint() == first
    record = config.models_dir / "reports" / "last-retrain.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"fingerprint": first}))
    assert retrain_if_new(config, store, device="cpu") is None  # nothing new: no training at all
    log_and_annotate(store, [("can you gift wrap my order", "gift_wrapping")])
    assert gather(config, store).fingerprint() != first


def test_judge_names_every_score_below_the_margin():
    report = GateReport("a", "b", scores={
        "project dev": {"intent_accuracy": (0.90, 0.895), "slot_f1": (0.95, 0.90)},
        "conversation tests": {"pass_rate": (1.0, 0.9)},
    })
    judge(report, margin=0.01)
    assert not report.promoted and len(report.reasons) == 2
    assert report.reasons[0].startswith("project dev: slot_f1 0.9000 < live 0.9500")


def test_the_generator_is_fine_tuned_on_agent_and_reviewer_replies_and_judged_too(project, tmp_path):
    config, store, _ = project
    tiny = load_config(FIXTURES / "tiny.toml").generator
    config = dataclasses.replace(config, generator=dataclasses.replace(tiny, enabled=True),
                                 retrain=dataclasses.replace(config.retrain, epochs=10, margin=0.5))
    domain = load_valid_domain(config.root, config.nlu.data, config.dialogue)
    first = train_generator(template_pairs(domain)[:200], template_pairs(domain)[200:240], tiny.model, tiny.training)
    first.save(config.generator_model_dir)
    register(store, "generator", config.generator_model_dir, config.models_dir)
    conversation = Conversation(id="rest:zed", channel="rest", sender="zed")
    asked = Event(conversation_id=conversation.id, kind="user", text="my parcel is damaged, mail zed@example.com", entities=[])
    answered = Event(conversation_id=conversation.id, kind="bot", text="Sorry, I can't help with that.", source="template")
    agent = Event(conversation_id=conversation.id, kind="bot", text="So sorry! A replacement leaves today.", source="agent")
    store.save_turn(conversation, [asked, answered, agent])
    store.annotate(annotate(answered, Correction("reviewer", rating="bad", reply="I'm sorry about that, we will replace it."), Redactor()))

    pairs = annotated_reply_pairs(store, Redactor())
    assert [(p.context, p.response) for p in pairs] == [("user: my parcel is damaged, mail <EMAIL>", "I'm sorry about that, we will replace it.")]
    report = retrain(config, store, device="cpu")
    live_loss, candidate_loss = report.scores["generator hold-out"]["neg_loss"]
    assert live_loss < 0 and candidate_loss < 0 and report.sizes["generator hold-out"] > 0
    assert report.promoted, report.to_dict()
    live = store.active_model("generator")
    assert live.parent is not None and (config.generator_model_dir / "checkpoint.json").is_file()


def test_pseudo_labels_are_the_confident_unannotated_messages_redacted(tmp_path):
    store = ConversationStore(f"sqlite:///{tmp_path}/p.db")
    store.migrate()
    conversation = Conversation(id="rest:p", channel="rest", sender="p")
    ranking = {"ranking": [["order_status", 0.99], ["greet", 0.01]]}
    store.save_turn(conversation, [
        Event(conversation_id="rest:p", kind="user", text="where is B-2001, mail p@example.com", intent="order_status", confidence=0.99, data=ranking,
              entities=[{"entity": "order_id", "value": "B-2001", "start": 9, "end": 15, "text": "B-2001", "extractor": "model"}]),
        Event(conversation_id="rest:p", kind="user", text="hmm", intent="greet", confidence=0.5, data={"ranking": [["greet", 0.5], ["deny", 0.5]]}),
        Event(conversation_id="rest:p", kind="user", text="/affirm", intent="affirm", confidence=1.0),
    ])
    examples = pseudo_labelled(store, Redactor(), confidence=0.95, exclude=set())
    assert [(e.text, e.intent) for e in examples] == [("where is B-2001, mail <EMAIL>", "order_status")]
    assert [(s.start, s.end, s.label) for s in examples[0].spans] == [(9, 15, "order_id")]
    assert pseudo_labelled(store, Redactor(), confidence=0.95, exclude={"where is B-2001, mail <EMAIL>"}) == []
    store.close()
