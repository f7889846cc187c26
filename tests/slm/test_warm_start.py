"""Fine-tuning a trained model on data with new intents and new words: old ids and rows survive."""

from dataclasses import replace

import torch

from slm.datasets import load_examples, split_dev
from slm.examples import Example, Span
from slm.joint import DISTILL_TEMPERATURE, distillation_loss
from slm.nlu import NLUModel
from slm.nlu_training import train_nlu
from slm.settings import ModelSizes, TrainSettings
from slm.tokenizer import Tokenizer
from slm.vocab_growth import grow_embeddings, grow_tokenizer, shattered_words
from slm.warm_start import parent_targets

SIZES = ModelSizes(vocab_size=200, d_model=32, n_layers=1, n_heads=2, d_ff=64, dropout=0.0)
SETTINGS = TrainSettings(epochs=3, batch_size=8, lr=3e-3, seed=0, device="cpu")
NEW_WORD = "quixotrazine"


def gift_wrap_examples() -> list[Example]:
    """A new intent whose messages share a word the first model never saw."""
    texts = [f"please {NEW_WORD} my parcel", f"can you {NEW_WORD} the order", f"i want {NEW_WORD} for D-1234"]
    examples = [Example(t, "gift_wrap") for t in texts * 3]
    text = f"{NEW_WORD} order D-5555"
    return [*examples, Example(text, "gift_wrap", (Span(len(NEW_WORD) + 7, len(text), "order_id"),))]


def test_a_shattered_frequent_word_gets_one_new_piece_and_old_ids_keep_their_pieces():
    texts = ["where is my order", "track my parcel please", "cancel the order"] * 5
    old = Tokenizer.train(texts, 60)
    assert len(old.pieces_of(NEW_WORD)) >= 3
    words = shattered_words(old, [*texts, f"{NEW_WORD} now", f"a {NEW_WORD}", "zzqxj once"], limit=10)
    assert NEW_WORD in words and "zzqxj" not in words  # a word seen once earns no piece
    repeated = shattered_words(old, [*texts, *[f"{NEW_WORD} now"] * 3], limit=10)
    assert NEW_WORD not in repeated  # ...even when its one message is repeated (annotation weight)
    grown = grow_tokenizer(old, words)
    assert grown.vocab_size == old.vocab_size + len(words)
    assert all(grown.piece(i) == old.piece(i) for i in range(old.vocab_size))
    assert grown.pieces_of(NEW_WORD) == ["\u2581" + NEW_WORD]
    untouched = {w for t in texts for w in t.split() if not any(w.startswith(n) for n in words)}
    assert untouched and all(grown.pieces_of(w) == old.pieces_of(w) for w in untouched)
    assert grow_tokenizer(grown, words).vocab_size == grown.vocab_size  # a piece is never added twice


def test_a_new_embedding_row_starts_as_the_mean_of_the_pieces_it_replaces():
    old = Tokenizer.train(["where is my order", "track my parcel"] * 5, 40)
    grown = grow_tokenizer(old, [NEW_WORD])
    table = torch.randn(old.vocab_size, 8)
    rows = grow_embeddings(table, old, grown)
    assert rows.shape == (grown.vocab_size, 8)
    assert torch.equal(rows[: old.vocab_size], table)
    spelled = [old.piece_id(p) for p in old.pieces_of(NEW_WORD)]
    assert torch.allclose(rows[-1], table[spelled].mean(0))


def test_fine_tuning_grows_intents_and_pieces_and_the_result_saves_and_loads(tiny_path, tmp_path):
    train, dev = split_dev(load_examples(tiny_path), 0.2, seed=0)
    parent = train_nlu(train, dev, SIZES, SETTINGS)
    child = train_nlu(train + gift_wrap_examples(), dev, SIZES, SETTINGS, parent=parent, new_pieces=50)
    grown = child.meta["training"]["fine_tuned"]
    assert grown["new_intents"] == 1 and grown["new_pieces"] >= 1
    assert child.tokenizer.vocab_size == parent.tokenizer.vocab_size + grown["new_pieces"]
    new_id = child.tokenizer.piece_id("\u2581" + NEW_WORD)
    assert new_id >= parent.tokenizer.vocab_size
    assert child.tokenizer.encode(f"{NEW_WORD} it").ids[0] == new_id
    # The old rows were the starting point: they moved by fine-tuning, not by being reset.
    old_rows = parent.model.encoder.pieces.weight
    new_rows = child.model.encoder.pieces.weight[: parent.tokenizer.vocab_size]
    assert torch.nn.functional.cosine_similarity(old_rows, new_rows).mean() > 0.5
    child.save(tmp_path / "child")
    loaded = NLUModel.load(tmp_path / "child")
    assert loaded.tokenizer.vocab_size == child.tokenizer.vocab_size
    assert loaded.parse(f"please {NEW_WORD} my parcel").intent == child.parse(f"please {NEW_WORD} my parcel").intent


def test_no_new_pieces_keeps_the_parent_tokenizer(tiny_path):
    train, dev = split_dev(load_examples(tiny_path), 0.2, seed=0)
    parent = train_nlu(train, dev, SIZES, SETTINGS)
    child = train_nlu(train + gift_wrap_examples(), dev, SIZES, SETTINGS, parent=parent, new_pieces=0)
    assert child.meta["training"]["fine_tuned"]["new_pieces"] == 0
    assert child.tokenizer.vocab_size == parent.tokenizer.vocab_size


def test_a_new_intent_row_is_imprinted_from_its_examples(tiny_path):
    train, dev = split_dev(load_examples(tiny_path), 0.2, seed=0)
    parent = train_nlu(train, dev, SIZES, SETTINGS)
    texts = [e.text for e in gift_wrap_examples()]
    child = train_nlu(train + gift_wrap_examples(), dev, SIZES, replace(SETTINGS, epochs=0), parent=parent)
    row = child.intents.index("gift_wrap")
    weight = child.model.intent_head[3].weight
    old_rows = [i for i, name in enumerate(child.intents) if name != "gift_wrap"]
    assert torch.isclose(weight[row].norm(), weight[old_rows].norm(dim=1).mean(), rtol=1e-4)
    hidden = []
    hook = child.model.intent_head[2].register_forward_hook(lambda _m, _i, out: hidden.append(out))
    child.model.eval()
    child.logits(texts)
    hook.remove()
    assert torch.nn.functional.cosine_similarity(weight[row], torch.cat(hidden).mean(0), dim=0) > 0.999


def test_old_examples_the_parent_reads_right_get_its_distribution_with_nothing_on_the_new_intent(tiny_path):
    train, dev = split_dev(load_examples(tiny_path), 0.2, seed=0)
    parent = train_nlu(train, dev, SIZES, replace(SETTINGS, epochs=8))
    data = train + gift_wrap_examples()
    intents = sorted({e.intent for e in data})
    targets = parent_targets(parent, [e.text for e in data], [e.intent for e in data], intents)
    predicted = {p.text: p.intent for p in parent.predict([e.text for e in train])}
    right = {e.text for e in train if predicted[e.text] == e.intent}
    assert right and set(targets) == right  # never a gift_wrap message, never one the parent gets wrong
    for soft in targets.values():
        assert soft[intents.index("gift_wrap")] == 0 and torch.isclose(soft.sum(), torch.tensor(1.0))


def test_distillation_counts_only_rows_with_a_teacher_and_is_least_at_the_teachers_distribution():
    soft = torch.tensor([[0.7, 0.2, 0.1], [0.0, 0.0, 0.0]])
    assert distillation_loss(torch.randn(2, 3), torch.zeros(2, 3)) == 0
    matching = soft[0].log() * DISTILL_TEMPERATURE  # logits whose softened softmax is the teacher's
    at_teacher = distillation_loss(torch.stack([matching, torch.randn(3)]), soft)
    elsewhere = distillation_loss(torch.stack([matching.flip(0), torch.randn(3)]), soft)
    assert at_teacher < elsewhere
    assert torch.isclose(distillation_loss(torch.stack([matching, torch.randn(3) * 9]), soft), at_teacher)  # row 2 has no teacher


def test_fine_tuning_with_distillation_trains_on_soft_targets_and_learns_the_new_intent(tiny_path):
    train, dev = split_dev(load_examples(tiny_path), 0.2, seed=0)
    parent = train_nlu(train, dev, SIZES, replace(SETTINGS, epochs=8))
    plain = train_nlu(train + gift_wrap_examples(), dev, SIZES, SETTINGS, parent=parent)
    distilled = train_nlu(train + gift_wrap_examples(), dev, SIZES, SETTINGS, parent=parent, distill=0.5)
    assert "gift_wrap" in distilled.intents
    # The soft targets changed what was learnt (same seed, same data otherwise).
    assert not torch.equal(plain.model.intent_head[3].weight, distilled.model.intent_head[3].weight)
