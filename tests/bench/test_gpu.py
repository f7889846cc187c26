"""bench.gpu is what runs on a lent GPU; its --tiny CPU path keeps it from rotting."""

import json
import subprocess
import sys

from tests.conftest import ROOT, shared_split


def test_gpu_benchmark_runs_tiny_on_cpu():
    shared_split("snips", "train")
    result = subprocess.run(
        [sys.executable, "-m", "bench.gpu", "--tiny", "--device", "cpu", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["device"] == "cpu"
    assert report["train_examples_per_s"] > 0
    assert set(report["inference"]) == {"256", "1024"}
    assert report["inference"]["256"]["parse_per_s"] > 0
    assert 0.0 <= report["dev"]["intent_accuracy"] <= 1.0
