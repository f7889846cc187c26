import hashlib
import json

import pytest
import torch

from slm.errors import CheckpointError
from slm.nlu import NLUModel
from tests.slm.test_joint import tiny_setup


@pytest.fixture
def saved(tiny_path, tmp_path):
    torch.manual_seed(0)
    examples, nlu, _ = tiny_setup(tiny_path)
    nlu.temperature = 1.7
    nlu.meta = {"metrics": {"dev": {"intent_accuracy": 0.5}}}
    nlu.save(tmp_path / "model")
    return examples, nlu, tmp_path / "model"


def test_round_trip_gives_identical_predictions(saved):
    examples, nlu, directory = saved
    loaded = NLUModel.load(directory)
    texts = [e.text for e in examples]
    assert [p.to_dict() for p in loaded.predict(texts)] == [p.to_dict() for p in nlu.predict(texts)]
    assert loaded.temperature == 1.7
    assert loaded.meta["metrics"]["dev"]["intent_accuracy"] == 0.5


def test_truncated_weights_refuse_to_load(saved):
    directory = saved[2]
    weights = directory / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="weights.pt: truncated"):
        NLUModel.load(directory)


def test_tampered_tokenizer_refuses_to_load(saved):
    directory = saved[2]
    data = bytearray((directory / "tokenizer.model").read_bytes())
    data[50] ^= 0xFF
    (directory / "tokenizer.model").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="tokenizer.model: checksum mismatch"):
        NLUModel.load(directory)


class Payload:
    """Stands for arbitrary pickled code: weights_only loading must refuse it."""


def rewrite_with_valid_manifest(directory, name, content: bytes) -> None:
    (directory / name).write_bytes(content)
    manifest = json.loads((directory / "checkpoint.json").read_text())
    manifest["files"][name] = {"bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}
    (directory / "checkpoint.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("kind", ["garbage", "pickled object"])
def test_weights_that_are_not_plain_tensors_are_refused(saved, tmp_path, kind):
    """Even with a matching manifest, non-tensor content never loads (weights_only=True)."""
    directory = saved[2]
    if kind == "garbage":
        content = b"not a zip archive at all"
    else:
        torch.save({"x": Payload()}, tmp_path / "evil.pt")
        content = (tmp_path / "evil.pt").read_bytes()
    rewrite_with_valid_manifest(directory, "weights.pt", content)
    with pytest.raises(CheckpointError, match="cannot be read as model weights"):
        NLUModel.load(directory)


def test_missing_or_wrong_directories(tmp_path, saved):
    with pytest.raises(CheckpointError, match="no such model directory"):
        NLUModel.load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="checkpoint.json: missing"):
        NLUModel.load(tmp_path / "empty")
    directory = saved[2]
    manifest = json.loads((directory / "checkpoint.json").read_text())
    manifest["kind"] = "encoder.v1"
    (directory / "checkpoint.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="expected 'joint.v1'"):
        NLUModel.load(directory)
