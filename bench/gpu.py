"""GPU benchmark: NLU training and batched inference throughput (bf16 autocast on CUDA).

    python -m bench.gpu [--device auto|cuda|cpu] [--tiny] [--json]

On a lent GPU machine this is the script to run: it trains the joint model on SNIPS and
reports training and inference speed plus dev accuracy. ``--tiny`` trains a tiny model on a
few hundred SNIPS lines for one epoch, so the script is exercised on CPU by the test suite.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from slm.datasets import load_examples
from slm.joint import ModelSizes
from slm.nlu import NLUModel
from slm.nlu_training import train_nlu
from slm.train import TrainSettings

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "snips"
TINY = ModelSizes(vocab_size=300, d_model=32, n_layers=1, n_heads=2, d_ff=64)


def inference_per_second(nlu: NLUModel, texts: list[str], batch_size: int) -> dict[str, float]:
    """Utterances per second for the full parse (with decoding) and for the encoder forward alone."""
    nlu.predict(texts[:batch_size], batch_size=batch_size)
    synchronize = torch.cuda.synchronize if nlu.device.type == "cuda" else (lambda: None)
    started = time.perf_counter()
    nlu.predict(texts, batch_size=batch_size)
    synchronize()
    parse = len(texts) / (time.perf_counter() - started)
    batches = [nlu.featurize(texts[i : i + batch_size]).to(nlu.device) for i in range(0, len(texts), batch_size)]
    autocast = nlu.device.type == "cuda"
    with torch.no_grad(), torch.autocast(nlu.device.type, dtype=torch.bfloat16, enabled=autocast):
        nlu.model(batches[0])
        synchronize()
        started = time.perf_counter()
        for batch in batches:
            nlu.model(batch)
        synchronize()
    return {"parse_per_s": parse, "forward_per_s": len(texts) / (time.perf_counter() - started)}


def run(device: str, tiny: bool) -> dict[str, object]:
    train, dev = load_examples(DATA / "train"), load_examples(DATA / "dev")
    if tiny:
        train, dev = train[:300], dev[:60]
    sizes = TINY if tiny else ModelSizes()
    settings = TrainSettings(device=device, epochs=1 if tiny else 15, batch_size=32 if tiny else 128, lr=2e-3, patience=5)
    started = time.perf_counter()
    nlu = train_nlu(train, dev, sizes, settings)
    seconds = time.perf_counter() - started
    texts = [e.text for e in train] * (1 if tiny else 4)
    training = nlu.meta["training"]
    return {
        "device": str(nlu.device),
        "gpu": torch.cuda.get_device_name(nlu.device) if nlu.device.type == "cuda" else None,
        "train_seconds": seconds,
        "train_examples_per_s": len(train) * training["epochs_run"] / seconds,
        "epochs_run": training["epochs_run"],
        "dev": nlu.meta["metrics"]["dev"],
        "inference": {str(b): inference_per_second(nlu, texts, b) for b in (256, 1024)},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tiny", action="store_true", help="tiny model, 300 lines, one epoch (CPU smoke run)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.device, args.tiny)
    if args.json:
        print(json.dumps(result))
        return
    print(f"device {result['device']} {result['gpu'] or ''}")
    print(f"training: {result['train_examples_per_s']:.0f} examples/s, {result['train_seconds']:.1f} s, {result['epochs_run']} epochs")
    print("dev: " + ", ".join(f"{k} {v:.4f}" for k, v in result["dev"].items() if k != "n"))  # type: ignore[union-attr]
    for batch, speeds in result["inference"].items():  # type: ignore[union-attr]
        print(f"inference batch {batch}: {speeds['parse_per_s']:.0f} parses/s, {speeds['forward_per_s']:.0f} forwards/s")


if __name__ == "__main__":
    main()
