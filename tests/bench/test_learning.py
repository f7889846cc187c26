"""The learning-loop benchmark's simulation on the tiny fixture: rounds, label counts, strategies."""

from bench.learning import labels_to_match, read, simulate
from slm.datasets import load_examples
from slm.nlu_training import train_nlu
from slm.settings import ModelSizes, TrainSettings
from tests.conftest import FIXTURES


def test_each_round_labels_more_and_reports_test_scores():
    examples = load_examples(FIXTURES / "tiny.jsonl")
    settings = TrainSettings(epochs=1, batch_size=16, device="cpu")
    sizes = ModelSizes(d_model=32, n_layers=1, n_heads=2, d_ff=64)
    first = train_nlu(examples[:12], examples[:8], sizes, settings)
    history = simulate("active", examples[:12], examples[12:], examples[:8], examples, rounds=2, per_round=5, settings=settings, first=first)
    assert [point["labels"] for point in history] == [0, 5, 10]
    assert all(0 <= point["intent_accuracy"] <= 1 and 0 <= point["slot_f1"] <= 1 for point in history)
    intents, values = read(first, [e.text for e in examples])
    assert len(values) == len(examples) and all(0 <= v <= 1.0001 for v in values)
    assert intents == [p.intent for p in first.predict([e.text for e in examples])]


def test_labels_to_match_finds_the_first_round_at_the_random_strategys_final_score():
    active = [{"labels": 0, "intent_accuracy": 0.8}, {"labels": 300, "intent_accuracy": 0.93}, {"labels": 600, "intent_accuracy": 0.95}]
    assert labels_to_match(active, 0.93) == 300
    assert labels_to_match(active, 0.99) is None


def test_the_plot_draws_both_metrics_for_both_strategies(tmp_path):
    from PIL import Image

    from bench.learning import plot

    active = [{"labels": n, "intent_accuracy": 0.9 + n / 10000, "slot_f1": 0.8 + n / 20000} for n in (0, 300, 600)]
    random_ = [{**r, "intent_accuracy": r["intent_accuracy"] - 0.01} for r in active]
    plot({"active": active, "random": random_}, tmp_path / "learning.png")
    with Image.open(tmp_path / "learning.png") as image:
        assert image.format == "PNG"
        colours = {colour for _, colour in image.convert("RGB").getcolors(maxcolors=1 << 16)}
    # Four series, four colours (lines, markers and legend).
    assert {(36, 84, 214), (126, 160, 240), (214, 48, 42), (240, 150, 140)} <= colours
