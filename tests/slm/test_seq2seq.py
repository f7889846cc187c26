"""The seq2seq generator: attention and copy behave, it can learn a tiny set exactly, decoding agrees."""

import pytest
import torch

from slm.dialogue_corpora import DialoguePair
from slm.generator import Generator, train_generator
from slm.pieces import PieceCodec
from slm.seq2seq import Seq2Seq
from slm.settings import Seq2SeqConfig, TrainSettings

TINY = Seq2SeqConfig(vocab_size=200, emb_dim=32, hidden=64, dropout=0.0, label_smoothing=0.0, max_source=96, max_target=48, exemplars=False)
PAIRS = [
    DialoguePair(f"fact: order {code} ; status {status}\nuser: where is my order?", f"Order {code} is {status}.")
    for code, status in [("A-1042", "shipped"), ("B-2001", "processing"), ("C-3310", "delivered"), ("D-4821", "shipped"),
                         ("E-5090", "delivered"), ("F-6001", "processing"), ("G-7123", "shipped"), ("H-8034", "delivered")]
]


def batch(model: Seq2Seq, lengths: list[int]):
    torch.manual_seed(0)
    width = max(lengths)
    src = torch.randint(5, model.config.vocab_size, (len(lengths), width))
    mask = torch.arange(width).unsqueeze(0) < torch.tensor(lengths).unsqueeze(1)
    return src.masked_fill(~mask, 0), mask


def test_attention_sums_to_one_over_real_positions_only():
    model = Seq2Seq(TINY).eval()
    src, mask = batch(model, [7, 3, 5])
    memory, hidden = model.encode(src, mask)
    step = model.steps(memory, src, mask, torch.full((3, 4), 2), hidden)
    assert torch.allclose(step.attention.sum(-1), torch.ones(3, 4))
    assert step.attention.masked_select(~mask.unsqueeze(1).expand(-1, 4, -1)).abs().max() == 0


def test_copy_puts_the_mass_on_source_pieces():
    model = Seq2Seq(TINY).eval()
    with torch.no_grad():
        model.gate.bias.fill_(-30.0)  # p_gen ~ 0: pure copying
    src, mask = batch(model, [6, 4])
    memory, hidden = model.encode(src, mask)
    probs = model.steps(memory, src, mask, torch.full((2, 3), 2), hidden).log_probs.exp()  # (B, T, V)
    for row in range(2):
        on_source = probs[row][:, src[row][mask[row]].unique()].sum(-1)
        assert torch.allclose(on_source, torch.ones(3), atol=1e-4)


def test_the_ablation_has_no_attention_and_no_copy():
    model = Seq2Seq(Seq2SeqConfig(**{**vars(TINY), "attention": False, "copy": False})).eval()
    src, mask = batch(model, [5])
    memory, hidden = model.encode(src, mask)
    step = model.steps(memory, src, mask, torch.full((1, 2), 2), hidden)
    assert step.attention is None and step.p_gen is None
    assert torch.allclose(step.log_probs.exp().sum(-1), torch.ones(1, 2))


@pytest.fixture(scope="module")
def overfit() -> Generator:
    settings = TrainSettings(epochs=150, batch_size=8, lr=1e-2, warmup=0.02, patience=150, seed=0, device="cpu")
    return train_generator(PAIRS, PAIRS, TINY, settings)


def test_overfits_a_tiny_set_to_exact_reproduction(overfit):
    replies = overfit.generate([p.context for p in PAIRS], beam=1)
    assert [r.text for r in replies] == [p.response for p in PAIRS]
    assert all(-1.0 < r.score <= 0 for r in replies)


def test_beam_of_width_one_equals_greedy(overfit):
    contexts = [p.context.replace("where is", "status of") for p in PAIRS]
    greedy = overfit.generate(contexts, beam=1)
    for context, expected in zip(contexts, greedy):
        ids, score = overfit.model.beam_search(*overfit.batch([context]), beam=1, no_repeat_ngram=0)
        assert overfit.codec.decode(ids) == expected.text
        assert score == pytest.approx(expected.score, abs=1e-5)


def test_beam_search_blocks_repeated_ngrams(overfit):
    ids, _ = overfit.model.beam_search(*overfit.batch(["user: hello hello hello"]), beam=3, no_repeat_ngram=2)
    bigrams = list(zip(ids, ids[1:]))
    assert len(bigrams) == len(set(bigrams))


def test_checkpoint_round_trip(overfit, tmp_path):
    overfit.save(tmp_path / "gen")
    loaded = Generator.load(tmp_path / "gen")
    contexts = [p.context for p in PAIRS[:3]]
    assert [g.text for g in loaded.generate(contexts, beam=2)] == [g.text for g in overfit.generate(contexts, beam=2)]
    assert loaded.meta["training"]["pairs"] == len(PAIRS)


def test_pieces_round_trip_any_text():
    codec = PieceCodec.train([p.response for p in PAIRS] * 5, vocab_size=120)
    for text in ["Order Z-9999 is lost 😱", "Ünïcödé çafé, 12.50 EUR!"]:
        assert codec.decode(codec.encode(text)) == text


def test_exemplars_are_saved_and_used_after_loading(tmp_path):
    config = Seq2SeqConfig(**{**vars(TINY), "exemplars": True})
    generator = train_generator(PAIRS, PAIRS[:2], config, TrainSettings(epochs=2, batch_size=8, device="cpu"))
    generator.save(tmp_path / "gen")
    loaded = Generator.load(tmp_path / "gen")
    assert loaded.exemplars is not None and loaded.exemplars.responses == [p.response for p in PAIRS]
    assert [g.text for g in loaded.generate([PAIRS[0].context], beam=1)] == [g.text for g in generator.generate([PAIRS[0].context], beam=1)]
