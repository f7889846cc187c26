import itertools
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from slm.crf import CRF, bio_allowed
from slm.datasets import load_examples
from slm.features import CharVocab
from slm.joint import JointConfig, JointModel
from slm.nlu import NLUModel
from slm.nlu_training import ExampleEncoder, tag_names
from slm.tokenizer import Tokenizer

TAGS = ["O", "B-a", "I-a", "B-b", "I-b"]


def tiny_setup(tiny_path, **sizes):
    examples = load_examples(tiny_path)
    tokenizer = Tokenizer.train([e.text for e in examples], vocab_size=200)
    chars = CharVocab.build(e.text for e in examples)
    intents, tags = sorted({e.intent for e in examples}), tag_names(examples)
    config = JointConfig(
        vocab_size=tokenizer.vocab_size, n_chars=len(chars), n_intents=len(intents), n_tags=len(tags),
        d_model=32, n_layers=1, n_heads=2, d_ff=64, dropout=0.0, **sizes,
    )
    model = JointModel(config, tags).eval()
    nlu = NLUModel(model, tokenizer, chars, intents, tags)
    return examples, nlu, ExampleEncoder(tokenizer, intents, tags).all(examples)


def collate(nlu, items):
    batch = nlu.featurize([i.example.text for i in items], [i.encoding for i in items])
    tags = torch.zeros(batch.word_mask.shape, dtype=torch.long)
    for row, item in enumerate(items):
        tags[row, : len(item.tags)] = torch.tensor(item.tags)
    return batch, (torch.tensor([i.intent for i in items]), tags)


def test_bio_constraints():
    allowed, first = bio_allowed(TAGS)
    assert not allowed[0, 2] and allowed[1, 2] and allowed[2, 2] and not allowed[1, 4]
    assert first.tolist() == [True, True, False, True, False]


def test_crf_decodes_only_valid_bio_even_when_emissions_prefer_invalid():
    crf = CRF(TAGS)
    emissions = torch.zeros(2, 4, len(TAGS))
    emissions[:, :, 2] = 5.0  # I-a everywhere is the emission favourite but may not follow O or start
    mask = torch.tensor([[True] * 4, [True, True, False, False]])
    paths = crf.decode(emissions, mask)
    assert [len(p) for p in paths] == [4, 2]
    for path in paths:
        assert path[0] != 2 and path[0] != 4
        for before, after in zip(path, path[1:]):
            assert bool(bio_allowed(TAGS)[0][before, after])


def random_crf(seed: int, *scores: str) -> CRF:
    """A BIO CRF over one entity type whose named score tables are random."""
    torch.manual_seed(seed)
    crf = CRF(["O", "B-a", "I-a"])
    with torch.no_grad():
        for name in scores:
            getattr(crf, name).normal_()
    return crf


# Two rows, the second one position shorter.
RAGGED_MASK = torch.tensor([[True] * 4, [True, True, True, False]])


def test_crf_viterbi_finds_the_most_likely_path():
    """The decoded path has the lowest NLL of every tag sequence (rows of different lengths)."""
    crf = random_crf(2, "transitions", "start", "end")
    emissions, mask = torch.randn(2, 4, 3), RAGGED_MASK
    for row, (length, path) in enumerate(zip([4, 3], crf.decode(emissions, mask))):
        def nll(tags: tuple[int, ...]) -> float:
            padded = torch.tensor([list(tags) + [0] * (4 - length)])
            return crf.nll(emissions[row : row + 1], padded, mask[row : row + 1]).item()

        best = min(itertools.product(range(3), repeat=length), key=nll)
        assert path == list(best)


def test_crf_nll_is_a_proper_likelihood():
    """exp(-nll) summed over every tag sequence of length 3 is 1."""
    crf = random_crf(0, "transitions")
    emissions = torch.randn(1, 3, 3)
    mask = torch.ones(1, 3, dtype=torch.bool)
    total = sum(
        torch.exp(-crf.nll(emissions, torch.tensor([[a, b, c]]), mask)).item()
        for a in range(3) for b in range(3) for c in range(3)
    )
    assert abs(total - 1.0) < 1e-4


def test_crf_marginals_match_brute_force():
    crf = random_crf(1, "transitions", "end")
    emissions, mask = torch.randn(2, 4, 3), RAGGED_MASK
    marginals = crf.marginals(emissions, mask)
    for row, length in enumerate([4, 3]):
        expected = torch.zeros(length, 3)
        for path in itertools.product(range(3), repeat=length):
            tags = torch.tensor([list(path) + [0] * (4 - length)])
            p = torch.exp(-crf.nll(emissions[row : row + 1], tags, mask[row : row + 1]))
            for t, tag in enumerate(path):
                expected[t, tag] += p[0]
        assert np.allclose(marginals[row, :length], expected.detach().numpy(), atol=1e-5)


def test_shapes(tiny_path):
    _, nlu, items = tiny_setup(tiny_path)
    batch, targets = collate(nlu, items[:5])
    output, loss = nlu.model(batch, targets)
    B, W = batch.word_mask.shape
    assert W == max(len(i.encoding.words) for i in items[:5])
    assert output.intent_logits.shape == (5, len(nlu.intents))
    assert output.tag_emissions.shape == (B, W, len(nlu.tags))
    assert torch.allclose(batch.word_pool.sum(-1)[batch.word_mask], torch.ones(int(batch.word_mask.sum())))
    assert loss.ndim == 0 and loss.item() > 0
    assert nlu.model(batch)[1] is None


def test_characters_pad_to_the_longest_word_and_more_padding_changes_nothing(tiny_path):
    """Batches pad characters only to their longest word: that must give exactly what padding
    to ``max_word_chars`` gives, because the padding embedding is zero, as the convolution pads."""
    _, nlu, items = tiny_setup(tiny_path)
    batch, _ = collate(nlu, items[:5])
    longest = max(e - s for i in items[:5] for s, e in i.encoding.words)
    assert batch.chars.shape[2] == min(longest, nlu.model.config.max_word_chars) < nlu.model.config.max_word_chars
    wide = replace(batch, chars=F.pad(batch.chars, (0, nlu.model.config.max_word_chars - batch.chars.shape[2])))
    with torch.no_grad():
        narrow_out, wide_out = nlu.model(batch)[0], nlu.model(wide)[0]
    assert torch.allclose(narrow_out.intent_logits, wide_out.intent_logits, atol=1e-5)
    assert torch.allclose(narrow_out.tag_emissions, wide_out.tag_emissions, atol=1e-5)


def test_overfits_a_tiny_batch(tiny_path):
    torch.manual_seed(0)
    examples, nlu, items = tiny_setup(tiny_path)
    batch, targets = collate(nlu, items[:16])
    optimizer = torch.optim.AdamW(nlu.model.parameters(), lr=3e-3)
    nlu.model.train()
    for _ in range(150):
        _, loss = nlu.model(batch, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05
    nlu.model.eval()
    predictions = nlu.predict([e.text for e in examples[:16]])
    assert [p.intent for p in predictions] == [e.intent for e in examples[:16]]
    assert [p.spans for p in predictions] == [tuple(sorted(e.spans)) for e in examples[:16]]


def test_char_cnn_spells_each_word_once_and_gives_its_pieces_the_same_vector(tiny_path):
    _, nlu, _ = tiny_setup(tiny_path)
    texts = ["unbelievably long words here", "hi", "", "order B-2001 please!"]
    batch = nlu.featurize(texts)
    cnn = nlu.model.encoder.chars
    with torch.no_grad():
        vectors = cnn(batch.chars, batch.word_starts)
        for row in range(len(texts)):
            for piece in range(batch.chars.shape[1]):
                spelling = batch.chars[row, piece]
                # Reference: this piece's characters convolved on their own.
                x = F.relu(cnn.conv(cnn.embed(spelling[None]).transpose(1, 2)))
                alone = cnn.proj(x.masked_fill(spelling[None, None] == 0, 0.0).amax(dim=2))[0]
                assert torch.allclose(vectors[row, piece], alone, atol=1e-5), (texts[row], piece)
    assert batch.word_starts.sum() < batch.chars.shape[0] * batch.chars.shape[1]  # fewer words than rows
