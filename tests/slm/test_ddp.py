"""Two gloo processes under torchrun train one model; rank 0 alone writes it."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import FIXTURES, ROOT


@pytest.mark.slow
def test_two_process_gloo_training(tmp_path):
    out = tmp_path / "model"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "bot", "nlu", "train", "--train", str(FIXTURES / "tiny.jsonl"), "--out", str(out),
        "--config", str(FIXTURES / "tiny.toml"), "--device", "cpu",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((out / "checkpoint.json").read_text())
    assert manifest["training"]["world_size"] == 2
    assert manifest["training"]["epochs_run"] == 3
