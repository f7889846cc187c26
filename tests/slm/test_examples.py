import pytest
from seqeval.metrics.sequence_labeling import get_entities

from slm.datasets import load_examples
from slm.examples import AlignmentError, Span, bio_to_spans, spans_to_bio
from tests.conftest import shared_split


def test_bio_to_spans_follows_conlleval_chunking():
    offsets = [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    tags = ["I-a", "I-a", "O", "B-b", "I-c"]
    assert bio_to_spans(tags, offsets) == [Span(0, 3, "a"), Span(6, 7, "b"), Span(8, 9, "c")]


def test_spans_to_bio_rejects_span_inside_a_token():
    with pytest.raises(AlignmentError, match="does not align"):
        spans_to_bio([Span(1, 3, "x")], [(0, 3), (4, 6)])


@pytest.mark.parametrize("corpus", ["snips", "atis"])
def test_chunks_match_seqeval_on_every_training_line(corpus):
    folder = shared_split(corpus, "train")
    examples = load_examples(folder)
    tag_lines = (folder / "seq.out").read_text(encoding="utf-8").splitlines()
    for example, line in zip(examples, tag_lines, strict=True):
        words = example.text.split(" ")
        starts = [sum(len(w) + 1 for w in words[:i]) for i in range(len(words))]
        expected = {(label, starts[b], starts[e] + len(words[e])) for label, b, e in get_entities(line.split())}
        assert {(s.label, s.start, s.end) for s in example.spans} == expected
