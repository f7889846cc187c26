"""A short real training run: reproducible under a seed, early stopping keeps the best epoch."""

from dataclasses import replace

import pytest
import torch
from torch import nn

from slm.datasets import load_examples, split_dev
from slm.nlu_training import decode_with_schema_if_better, train_nlu
from slm.settings import ModelSizes, TrainSettings
from slm.train import fit

SIZES = ModelSizes(vocab_size=200, d_model=32, n_layers=1, n_heads=2, d_ff=64, dropout=0.0)


def train_tiny(tiny_path, seed: int, epochs: int = 4, patience: int = 10):
    train, dev = split_dev(load_examples(tiny_path), 0.2, seed=0)
    reports = []
    settings = TrainSettings(epochs=epochs, batch_size=8, lr=3e-3, patience=patience, seed=seed, device="cpu")
    nlu = train_nlu(train, dev, SIZES, settings, on_epoch=reports.append)
    return nlu, reports


def test_same_seed_same_model(tiny_path):
    first, _ = train_tiny(tiny_path, seed=5)
    second, _ = train_tiny(tiny_path, seed=5)
    other, _ = train_tiny(tiny_path, seed=6)
    for name, tensor in first.model.state_dict().items():
        assert torch.equal(tensor, second.model.state_dict()[name]), name
    assert any(not torch.equal(t, other.model.state_dict()[n]) for n, t in first.model.state_dict().items())


def test_early_stopping_restores_the_best_epoch(tiny_path):
    nlu, reports = train_tiny(tiny_path, seed=1, epochs=30, patience=2)
    best = max(reports, key=lambda r: r.scores["score"])
    training = nlu.meta["training"]
    assert training["best_epoch"] == best.epoch
    assert training["epochs_run"] == len(reports) <= 30
    assert training["epochs_run"] - training["best_epoch"] <= 2
    assert nlu.meta["metrics"]["dev"]["frame_accuracy"] == best.scores["frame_accuracy"]
    assert 0.05 <= nlu.temperature <= 20.0


def test_learns_the_tiny_task(tiny_path):
    nlu, _ = train_tiny(tiny_path, seed=0, epochs=25)
    parsed = nlu.parse("where is order B-2001")
    assert parsed.intent == "order_status"
    assert [(e.entity, e.value) for e in parsed.entities] == [("order_id", "B-2001")]


class Scalar(nn.Module):
    """One weight pulled towards the target; remembers the weight each training step started from."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.seen: list[float] = []

    def forward(self, _inputs, target):
        self.seen.append(self.w.item())
        return None, ((self.w - target) ** 2).mean()


def fit_scalar(ema: float) -> tuple[Scalar, list[float]]:
    """Twelve epochs of one step each; every epoch scores higher, so the last one's weights are kept."""
    model, judged = Scalar(), []

    def evaluate(module: nn.Module) -> dict[str, float]:
        judged.append(module.w.item())
        return {"score": float(len(judged))}

    settings = TrainSettings(epochs=12, batch_size=1, lr=0.05, warmup=0.0, weight_decay=0.0, patience=10, device="cpu", ema=ema)
    fit(model, [1.0], lambda chunk, _device: (None, torch.tensor(chunk)), evaluate, "score", settings)
    return model, judged


def test_ema_judges_and_keeps_the_moving_average_without_changing_training():
    raw, raw_judged = fit_scalar(ema=0.0)
    averaged, ema_judged = fit_scalar(ema=0.5)
    assert averaged.seen == raw.seen  # training itself follows the same path
    steps = raw_judged  # without ema, each epoch is judged on the weights after its one step
    expected = [steps[0]]  # the average starts at the first step's weights
    for count, weight in enumerate(steps[1:], start=1):
        decay = min(0.5, (1 + count) / (10 + count))  # ramps up, then stays at the setting
        expected.append(decay * expected[-1] + (1 - decay) * weight)
    assert ema_judged == pytest.approx(expected)
    assert averaged.w.item() == pytest.approx(expected[-1]) and expected[-1] < raw.w.item()


def test_min_steps_stretches_epochs_and_patience_of_a_small_data_set():
    settings = TrainSettings(epochs=20, patience=5, min_steps=4000)
    assert settings.planned(steps_per_epoch=204) == (20, 5)  # SNIPS fills 4,000 steps in 20 epochs
    assert settings.planned(steps_per_epoch=70) == (58, 15)  # ATIS needs 58 epochs, and waits 15
    assert TrainSettings(epochs=20, patience=5).planned(steps_per_epoch=70) == (20, 5)


def test_a_stretched_run_trains_and_reports_its_planned_epochs():
    model, reports = Scalar(), []
    settings = TrainSettings(epochs=2, batch_size=1, lr=0.05, warmup=0.0, patience=10, device="cpu", min_steps=6)
    result = fit(model, [1.0, 1.0], lambda chunk, _device: (None, torch.tensor(chunk)), lambda _m: {"score": 0.0}, "score", settings, reports.append)
    assert [r.epochs for r in reports] == [3, 3, 3] and result.epochs_run == 3  # 2 steps an epoch: 3 epochs fill 6 steps
    assert len(model.seen) == 6


def test_redraw_gives_each_epoch_its_own_items():
    drawn, trained = [], []

    def redraw(items):
        drawn.append(list(items))
        return [value + len(drawn) for value in items]  # epoch n trains on the originals + n

    def collate(chunk, _device):
        trained.append(sorted(chunk))
        return None, torch.tensor(chunk)

    settings = TrainSettings(epochs=3, batch_size=2, lr=0.05, warmup=0.0, patience=10, device="cpu")
    fit(Scalar(), [1.0, 1.0], collate, lambda _m: {"score": 0.0}, "score", settings, redraw=redraw)
    assert drawn == [[1.0, 1.0]] * 3  # always drawn from the originals, never from a previous draw
    assert trained == [[2.0, 2.0], [3.0, 3.0], [4.0, 4.0]]


def test_the_slot_schema_constrains_decoding_only_when_dev_scores_higher(tiny_path):
    nlu, _ = train_tiny(tiny_path, seed=0)
    model = nlu.model
    model.allowed_tags.fill_(True)
    only_o = torch.zeros_like(model.allowed_tags)
    only_o[:, 0] = True

    def evaluate(m):  # scores the constraint in place while dev is evaluated
        return {"score": 0.5 if bool(m.allowed_tags.all()) else score_with_schema}

    score_with_schema = 0.4
    assert decode_with_schema_if_better(model, only_o, {"score": 0.5}, evaluate) is None
    assert bool(model.allowed_tags.all())  # restored
    score_with_schema = 0.6
    assert decode_with_schema_if_better(model, only_o, {"score": 0.5}, evaluate) == {"score": 0.6}
    assert torch.equal(model.allowed_tags, only_o)
    assert nlu.parse("where is order B-2001").entities == []  # decoding obeys it: every word O


def test_training_records_whether_the_slot_schema_was_chosen(tiny_path):
    train, dev = split_dev(load_examples(tiny_path), 0.2, seed=0)
    settings = TrainSettings(epochs=2, batch_size=8, lr=3e-3, device="cpu")
    off = train_nlu(train, dev, replace(SIZES, slot_schema_on_dev=False), settings)
    assert off.meta["training"]["slot_schema"] == "off" and bool(off.model.allowed_tags.all())
    auto = train_nlu(train, dev, SIZES, settings)
    chosen = auto.meta["training"]["slot_schema"] == "chosen on dev"
    assert chosen != bool(auto.model.allowed_tags.all())
    trained = train_nlu(train, dev, replace(SIZES, intent_slot_mask=True), settings)
    assert trained.meta["training"]["slot_schema"] == "trained"
