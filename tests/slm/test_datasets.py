import pickle
from pathlib import Path

import pytest

from slm.datasets import load_examples, split_dev
from slm.errors import DataError
from slm.examples import Span


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def seq_folder(root: Path, words: str, tags: str, labels: str) -> Path:
    write(root / "seq.in", words)
    write(root / "seq.out", tags)
    write(root / "label", labels)
    return root


def test_seq_folder_becomes_character_spans(tmp_path):
    folder = seq_folder(tmp_path, "play the beatles \nhi\n", "O B-artist I-artist\nO\n", "PlayMusic\nGreet\n")
    first, second = load_examples(folder)
    assert first.text == "play the beatles"
    assert first.spans == (Span(5, 16, "artist"),)
    assert first.origin.endswith("seq.in:1")
    assert second.intent == "Greet"


def test_tag_count_mismatch_names_file_and_line(tmp_path):
    folder = seq_folder(tmp_path, "a b\nc d\n", "O O\nO\n", "x\ny\n")
    with pytest.raises(DataError, match=r"seq.out:2: 1 tags for 2 tokens"):
        load_examples(folder)


def test_line_count_mismatch_and_bad_tag(tmp_path):
    with pytest.raises(DataError, match="different line counts"):
        load_examples(seq_folder(tmp_path / "a", "a\nb\n", "O\nO\n", "x\n"))
    with pytest.raises(DataError, match=r"seq.out:1: invalid BIO tag 'X-foo'"):
        load_examples(seq_folder(tmp_path / "b", "a\n", "X-foo\n", "x\n"))


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "invalid JSON"),
        ('{"text": "hi"}', "'intent' must be a non-empty string"),
        ('{"text": "hi", "intent": "g", "entities": [{"start": 1, "end": 9, "entity": "x"}]}', "outside the text"),
        ('{"text": "hello", "intent": "g", "entities": [{"start": 0, "end": 3, "entity": "a"}, {"start": 2, "end": 4, "entity": "b"}]}', "overlap"),
        ('["text"]', "expected a JSON object"),
    ],
)
def test_malformed_jsonl_names_line(tmp_path, line, message):
    path = write(tmp_path / "d.jsonl", '{"text": "ok", "intent": "g"}\n' + line + "\n")
    with pytest.raises(DataError, match=message) as error:
        load_examples(path)
    assert str(error.value).startswith(f"{path}:2:")


def test_incomplete_seq_folder_names_the_missing_file(tmp_path):
    write(tmp_path / "seq.in", "a\n")
    write(tmp_path / "label", "x\n")
    with pytest.raises(DataError, match="has seq.in, label but not seq.out"):
        load_examples(tmp_path)


def test_unknown_path_and_unknown_format(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_examples(tmp_path / "missing")
    with pytest.raises(DataError, match="not a dataset"):
        load_examples(write(tmp_path / "data.csv", "a,b\n"))


def test_intents_yaml_with_inline_entities(tmp_path):
    write(
        tmp_path / "orders.yml",
        "nlu:\n  - intent: order_status\n    examples: |\n      - where is [A-1042](order_id)\n      - my order\n"
        "  - synonym: parcel\n    examples: |\n      - package\n",
    )
    first, second = load_examples(tmp_path)
    assert first.text == "where is A-1042"
    assert first.spans == (Span(9, 15, "order_id"),)
    assert first.origin.endswith("orders.yml:4")
    assert second.origin.endswith("orders.yml:5")


@pytest.mark.parametrize(
    "content, message",
    [
        ("nlu:\n  - intent: a\n    examples: |\n      - fine\n      no dash\n", r"x.yml:5: each example must start with '- '"),
        ("nlu:\n  - intent: a\n    examples: [\n", r"x.yml:\d+: invalid YAML"),
        ("nlu:\n  - intnt: a\n", r"x.yml:2: entry needs one of"),
        ("intents: []\n", r"x.yml:1: expected a top-level 'nlu:' list"),
        ("nlu:\n  - intent: a\n    examples: |\n      - see [A-1](order_id\n", r"x.yml:4: unbalanced entity markup"),
    ],
)
def test_malformed_yaml_names_file_and_line(tmp_path, content, message):
    write(tmp_path / "x.yml", content)
    with pytest.raises(DataError, match=message):
        load_examples(tmp_path)


def test_split_dev_keeps_every_intent_in_train(tiny_path):
    examples = load_examples(tiny_path)
    train, dev = split_dev(examples, 0.2, seed=1)
    assert len(train) + len(dev) == len(examples)
    assert {e.intent for e in train} == {e.intent for e in examples}
    assert {e.intent for e in dev} == {e.intent for e in examples}
    assert split_dev(examples, 0.2, seed=1) == (train, dev)


def test_data_error_survives_pickling_so_worker_processes_can_report_it() -> None:
    error = pickle.loads(pickle.dumps(DataError("train/seq.out", 7, "3 tags for 4 tokens")))
    assert (str(error), error.line, error.reason) == ("train/seq.out:7: 3 tags for 4 tokens", 7, "3 tags for 4 tokens")
