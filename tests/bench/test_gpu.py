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


def test_nlu_sweep_smoke_run_reports_each_variant(tmp_path):
    shared_split("atis", "train")
    out = tmp_path / "sweep.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "bench.nlu_sweep", "--corpus", "atis", "--configs", "base", "no_lstm",
         "--limit", "120", "--jobs", "2", "--device", "cpu", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["variant"] for r in rows} == {"base", "no_lstm"}
    assert all(0.0 <= r["intent_accuracy"] <= 1.0 and isinstance(r["intent_errors"], list) for r in rows)
    assert "| atis | base |" in result.stdout and "Unfinished" not in result.stdout
