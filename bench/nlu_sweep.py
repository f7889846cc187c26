"""Many NLU training runs side by side, scored on the test splits: which settings are worth a CPU run.

    python -m bench.nlu_sweep [--corpus atis snips] [--configs base mask ...] [--jobs N]
                              [--budget SECONDS] [--device auto] [--limit N] [--out FILE]

A full `bench.nlu` run takes a CPU core 8-15 minutes per corpus, so comparing a dozen settings
(and a few seeds, to see the noise) is what a lent GPU machine is for: each run is one process
with one CPU thread, all sharing the GPU. Runs end when their training does or when the budget
runs out (unfinished runs are reported as such). Every finished run appends one JSON line to
``--out`` (test scores, training time, the test intents it got wrong, and the frames with the
right intent and wrong entities), so nothing is lost when the machine is taken back; the table
at the end ranks the runs by frame accuracy. Settings that
look better here are then confirmed by `bench.nlu` on CPU, whose numbers are the ones reported.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import torch

from bench.data import SHARED_DATA
from bench.nlu import RESULTS, SETTINGS, SIZES
from bench.timing import log
from slm.datasets import load_examples
from slm.examples import Example, Span
from slm.metrics import nlu_scores
from slm.nlu_training import train_nlu

# Each named variant changes `bench.nlu`'s configuration in one way (model sizes or training
# settings), some with another seed: seeds measure how much of a difference is noise.
VARIANTS: dict[str, dict[str, Any]] = {
    "base": {},
    "seed1": {"seed": 1},
    "seed2": {"seed": 2},
    "mask": {"intent_slot_mask": True},
    "mask_seed1": {"intent_slot_mask": True, "seed": 1},
    "no_schema": {"slot_schema_on_dev": False},
    "long": {"epochs": 40, "patience": 10},
    "lr1e-3": {"lr": 1e-3, "epochs": 40, "patience": 10},
    "wide": {"d_model": 256, "d_ff": 1024},
    "deep": {"n_layers": 4},
    "dropout0.3": {"dropout": 0.3},
    "no_lstm": {"recurrent": False},
    "vocab2k": {"vocab_size": 2000},
    "vocab12k": {"vocab_size": 12000},
    "batch32": {"batch_size": 32},
    "piece_dropout0.2": {"piece_dropout": 0.2},
    "decay0.05": {"weight_decay": 0.05},
    "no_swap": {"entity_swap": 0.0},
    "swap0.25": {"entity_swap": 0.25},
    "swap0.25_seed1": {"entity_swap": 0.25, "seed": 1},
    "vocab2k_seed1": {"vocab_size": 2000, "seed": 1},
    "no_ema": {"ema": 0.0},
    "no_ema_seed1": {"ema": 0.0, "seed": 1},
}


def configure(variant: str, device: str, limit: int | None):
    """`bench.nlu`'s sizes and settings with the variant's changes applied."""
    changes = VARIANTS[variant]
    sizes = replace(SIZES, **{k: v for k, v in changes.items() if hasattr(SIZES, k)})
    settings = replace(SETTINGS, device=device, **{k: v for k, v in changes.items() if hasattr(SETTINGS, k)})
    if limit is not None:  # smoke runs: a tiny model for one epoch, without the benchmark's step floor
        sizes = replace(sizes, vocab_size=300, d_model=32, n_layers=1, n_heads=2, d_ff=64)
        settings = replace(settings, epochs=1, min_steps=0)
    return sizes, settings


def train_and_score(job: tuple[str, str, str, str, int | None]) -> dict[str, Any]:
    """One run in its own process: train on train, early-stop on dev, score test."""
    corpus, variant, data, device, limit = job
    torch.set_num_threads(1)
    train, dev, test = (load_examples(Path(data) / corpus / split)[:limit] for split in ("train", "dev", "test"))
    sizes, settings = configure(variant, device, limit)
    started = time.perf_counter()
    nlu = train_nlu(train, dev, sizes, settings)
    seconds = time.perf_counter() - started
    predictions = nlu.predict([e.text for e in test])
    scores = nlu_scores(test, [p.intent for p in predictions], [p.spans for p in predictions])
    wrong = [[e.text, e.intent, p.intent] for e, p in zip(test, predictions) if e.intent != p.intent]
    missed = [frame_error(e, p.intent, p.spans) for e, p in zip(test, predictions) if e.intent == p.intent and set(e.spans) != set(p.spans)]
    return {
        "corpus": corpus,
        "variant": variant,
        "device": str(nlu.device),
        "train_seconds": round(seconds, 1),
        "epochs_run": nlu.meta["training"]["epochs_run"],
        "best_epoch": nlu.meta["training"]["best_epoch"],
        **{k: scores[k] for k in ("intent_accuracy", "slot_f1", "frame_accuracy")},
        "dev": nlu.meta["metrics"]["dev"],  # what a choice between settings should rest on
        "intent_errors": wrong,
        "slot_errors": missed,
    }


def frame_error(example: Example, intent: str, spans: Sequence[Span]) -> dict[str, Any]:
    """A frame whose entities the model got wrong, as ``label=value`` lists: which types fail, and how."""

    def named(found: Sequence[Span]) -> list[str]:
        return [f"{s.label}={example.text[s.start : s.end]}" for s in found]

    return {"text": example.text, "gold_intent": example.intent, "intent": intent, "gold": named(example.spans), "predicted": named(spans)}


def markdown(rows: list[dict[str, Any]], unfinished: list[str]) -> str:
    """Runs ranked by frame accuracy within each corpus."""
    devices = ", ".join(sorted({r["device"] for r in rows})) or "none"
    lines = [
        "# NLU settings sweep (generated by `python -m bench.nlu_sweep`; do not edit)",
        "",
        f"Test-split scores of `bench.nlu`'s configuration with one change each; device {devices}, runs side",
        "by side. Screening only: the reported NLU numbers are `bench.nlu`'s, on CPU.",
        "",
        "| corpus | variant | intent acc | slot F1 | frame acc | train s | epochs (best) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(rows, key=lambda r: (r["corpus"], -r["frame_accuracy"])):
        lines.append(
            f"| {r['corpus']} | {r['variant']} | {100 * r['intent_accuracy']:.2f} | {100 * r['slot_f1']:.2f} | "
            f"{100 * r['frame_accuracy']:.2f} | {r['train_seconds']:.0f} | {r['epochs_run']} ({r['best_epoch']}) |"
        )
    if unfinished:
        lines.append(f"\nUnfinished within the budget: {', '.join(unfinished)}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", nargs="+", default=["atis", "snips"], choices=["atis", "snips"])
    parser.add_argument("--configs", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (one CPU thread each)")
    parser.add_argument("--budget", type=float, default=3600.0, help="seconds before unfinished runs are stopped")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--limit", type=int, help="first N examples of each split and a tiny model (smoke run)")
    parser.add_argument("--out", type=Path, default=Path("nlu_sweep.jsonl"))
    args = parser.parse_args(argv)
    jobs = [(c, v, str(SHARED_DATA), args.device, args.limit) for c in args.corpus for v in args.configs]
    deadline = time.monotonic() + args.budget
    rows: list[dict[str, Any]] = []
    # spawn: CUDA cannot be used in forked children.
    with multiprocessing.get_context("spawn").Pool(args.jobs, maxtasksperchild=1) as pool:
        pending = {job[:2]: pool.apply_async(train_and_score, (job,)) for job in jobs}
        while pending and time.monotonic() < deadline:
            for key, result in list(pending.items()):
                if not result.ready():
                    continue
                del pending[key]
                if not result.successful():
                    try:
                        result.get()
                    except Exception as error:  # one broken run must not lose the others
                        log(f"{key[0]} {key[1]}: failed: {error!r}")
                    continue
                row = result.get()
                rows.append(row)
                with args.out.open("a", encoding="utf-8") as out:
                    out.write(json.dumps(row) + "\n")
                log(f"{key[0]} {key[1]}: frame {row['frame_accuracy']:.4f} intent {row['intent_accuracy']:.4f}")
            time.sleep(0.5)
        pool.terminate()
    page = markdown(rows, [f"{c}/{v}" for c, v in pending])
    if args.limit is None:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "nlu_sweep.md").write_text(page, encoding="utf-8")
    print(page)


if __name__ == "__main__":
    main()
