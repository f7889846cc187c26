"""Learning-loop benchmark: does labelling logged traffic, chosen by the label queue, pay off?

A deployment simulated on SNIPS: the first model is trained on 10% of the training set; the
rest arrives as user traffic in 5 rounds. After each round 300 messages are labelled (with
their gold labels, as a reviewer would) chosen (a) by the active-learning queue, ranked as
`bot.annotation` ranks it (messages the live model now reads differently from the model that
logged them first, then by normalised entropy of the live model's intent distribution), or
(b) at random, and the model is fine-tuned from the live one (`slm.warm_start`, keeping the
moving average of its weights, ``[retrain] ema``) on everything labelled so far, each labelled message counted ``--weight`` times; intent accuracy and slot
F1 are measured on the SNIPS test set. Every fine-tuning runs at most ``--epochs`` (15) at
``--lr`` (0.002), shorter than `[retrain]`'s 60 at 0.001, so the benchmark fits in under an hour.

Also: the evaluation gate (`bot.retrain.judge`) against a candidate trained on shuffled
labels, and new intents learnt only from labelled traffic: each SNIPS intent in turn is
withheld from a first model; 100 of its messages are labelled, then its test accuracy and the
other intents' change are measured, as `slmbot retrain` learns them by default and with the old
intents distilled from the model before (``[retrain] distill``), next to the accuracy the first model (which had the
intent's share of the 10% from the start) reaches on it. Leaving every intent out in turn says
more than one chosen intent: SNIPS intents differ a lot in how confusable they are.

The parts run side by side, one process and one CPU thread each (``--jobs``); ``--parts``
runs some of them and keeps the saved results of the others.

    python -m bench.learning [--json] [--rounds 5] [--per-round 300] [--epochs 15] [--lr 0.002] [--strategy active|random|both]
                             [--weight 3] [--ema 0.99] [--parts loop gate new-intents] [--new-intents NAME ...] [--jobs 2] [--plot]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import statistics
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from bench.data import SHARED_DATA
from bench.timing import log, publish
from bot.annotation import informativeness
from bot.config import RetrainSettings
from bot.retrain import GateReport, judge
from slm.datasets import load_examples
from slm.examples import Example
from slm.metrics import nlu_scores
from slm.nlu import NLUModel
from slm.nlu_training import train_nlu
from slm.settings import ModelSizes, TrainSettings

SNIPS = SHARED_DATA / "snips"
DEV_SIZE = 500
NEWCOMERS = 100
DISTILL = 0.3  # `[retrain] distill` measured against the default (0: off)
PARTS = ("loop", "gate", "new-intents")
RESULTS = Path(__file__).resolve().parent / "results"
# Every first model (the deployment's, and each one without a withheld intent): the training
# defaults, no moving average, 30 epochs at most (fine-tuning takes `[retrain]`'s settings).
FIRST_MODEL = TrainSettings(epochs=30, patience=5, device="cpu")


def scores(model: NLUModel, examples: list[Example]) -> dict[str, float]:
    predictions = model.predict([e.text for e in examples])
    result = nlu_scores(examples, [p.intent for p in predictions], [p.spans for p in predictions])
    return {"intent_accuracy": round(result["intent_accuracy"], 4), "slot_f1": round(result["slot_f1"], 4)}


@torch.inference_mode()
def read(model: NLUModel, texts: list[str]) -> tuple[list[str], list[float]]:
    """The intent of each text and the normalised entropy of its calibrated intent distribution
    (one forward pass for both)."""
    probabilities = torch.softmax(model.logits(texts) / model.temperature, dim=-1)
    values = -(probabilities * probabilities.clamp_min(1e-12).log()).sum(-1) / torch.log(torch.tensor(float(probabilities.shape[1])))
    return [model.intents[i] for i in probabilities.argmax(-1).tolist()], values.tolist()


def first_model(examples: list[Example], dev: list[Example]) -> NLUModel:
    """A model trained from scratch with `FIRST_MODEL`, as `slmbot train` does."""
    return train_nlu(examples, dev, ModelSizes(), FIRST_MODEL)


def fine_tune(examples: list[Example], dev: list[Example], settings: TrainSettings, parent: NLUModel, distill: float = 0.0) -> NLUModel:
    """``parent`` fine-tuned on ``examples`` with ``settings``, as `slmbot retrain` does."""
    return train_nlu(examples, dev, ModelSizes(), settings, parent=parent, distill=distill)


def simulate(strategy: str, seed_set: list[Example], traffic: list[Example], dev: list[Example], test: list[Example],
             rounds: int, per_round: int, settings: TrainSettings, first: NLUModel, weight: int = 1) -> list[dict[str, float]]:
    """One deployment: rounds of traffic, labelling and fine-tuning; the test scores after each round."""
    rng = random.Random(1)
    chunk = len(traffic) // rounds
    model, labelled, unlabelled, logged = first, [], [], []
    history = [{**scores(first, test), "labels": 0}]
    for round_ in range(rounds):
        arriving = traffic[round_ * chunk : (round_ + 1) * chunk]
        unlabelled += arriving
        logged += read(model, [e.text for e in arriving])[0]  # what the live model logged
        if strategy == "active":
            # The product's label queue: model versions disagreeing first, then the most uncertain.
            now, uncertainty = read(model, [e.text for e in unlabelled])
            value = [informativeness(u, a != b) for u, a, b in zip(uncertainty, now, logged)]
            order = sorted(range(len(unlabelled)), key=lambda i: -value[i])
        else:
            order = list(range(len(unlabelled)))
            rng.shuffle(order)
        chosen = set(order[:per_round])
        labelled += [unlabelled[i] for i in chosen]
        unlabelled = [e for i, e in enumerate(unlabelled) if i not in chosen]
        logged = [intent for i, intent in enumerate(logged) if i not in chosen]
        model = fine_tune(seed_set + labelled * weight, dev, settings, model)
        history.append({**scores(model, test), "labels": len(labelled)})
        log(f"{strategy} round {round_ + 1}: {history[-1]}")
    return history


def labels_to_match(active: list[dict[str, float]], random_final: float) -> int | None:
    """Fewest labels with which active learning reached the random strategy's final accuracy."""
    return next((int(point["labels"]) for point in active if point["intent_accuracy"] >= random_final), None)


@dataclass(frozen=True)
class Deployment:
    """The simulated deployment's data: the first model's 10%, the traffic after it, dev, test."""

    seed_set: list[Example]
    traffic: list[Example]
    dev: list[Example]
    test: list[Example]


def deployment() -> Deployment:
    """The same split in every process (a seeded shuffle of SNIPS train)."""
    pool = load_examples(SNIPS / "train")
    random.Random(0).shuffle(pool)
    cut = len(pool) // 10
    return Deployment(pool[:cut], pool[cut:], load_examples(SNIPS / "dev")[:DEV_SIZE], load_examples(SNIPS / "test"))


def run_loop(strategy: str, first_dir: str, settings: TrainSettings, rounds: int, per_round: int, weight: int) -> list[dict[str, float]]:
    """`simulate` in a worker process, from the first model saved in ``first_dir``."""
    torch.set_num_threads(1)
    data = deployment()
    return simulate(strategy, data.seed_set, data.traffic, data.dev, data.test, rounds, per_round, settings, NLUModel.load(Path(first_dir)), weight)


def run_gate(first_dir: str, settings: TrainSettings, labels: int) -> bool:
    """Whether the gate rejects a candidate fine-tuned on ``labels`` messages with shuffled intents."""
    torch.set_num_threads(1)
    data = deployment()
    first = NLUModel.load(Path(first_dir))
    labelled = data.seed_set + data.traffic[:labels]
    intents = [e.intent for e in labelled]
    random.Random(0).shuffle(intents)
    corrupt = fine_tune([replace(e, intent=i) for e, i in zip(labelled, intents)], data.dev, settings, first)
    report = GateReport("first", "corrupt")
    before, after = scores(first, data.dev), scores(corrupt, data.dev)
    report.scores["SNIPS dev"] = {m: (before[m], after[m]) for m in before}
    judge(report, margin=0.01)
    return not report.promoted


def run_new_intent(intent: str, settings: TrainSettings, weight: int) -> dict[str, object]:
    """Withhold ``intent`` from a first model, then learn it from `NEWCOMERS` labelled messages,
    as `slmbot retrain` does by default and with the old intents distilled (`DISTILL`) from the
    model before (same model, same data)."""
    torch.set_num_threads(1)
    data = deployment()
    old_seed = [e for e in data.seed_set if e.intent != intent]
    without = first_model(old_seed, data.dev)
    newcomers = [e for e in data.traffic if e.intent == intent][:NEWCOMERS]
    new_test = [e for e in data.test if e.intent == intent]
    old_test = [e for e in data.test if e.intent != intent]
    before = scores(without, old_test)["intent_accuracy"]
    arms = {}
    for arm, distill in (("default", 0.0), ("distilled", DISTILL)):
        grown = fine_tune(old_seed + newcomers * weight, data.dev, settings, without, distill)
        drop = round(before - scores(grown, old_test)["intent_accuracy"], 4)
        arms[arm] = {"accuracy": scores(grown, new_test)["intent_accuracy"], "old_intents_drop": drop}
        log(f"new intent {intent} ({arm}): {arms[arm]}")
    return {**arms["default"], "distilled": arms["distilled"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--per-round", type=int, default=300)
    # Fine-tuning runs four times shorter than `[retrain]`'s 60 epochs at lr 0.001 (which
    # `--epochs 60 --lr 0.001` measure), so that the whole benchmark fits in under an hour.
    parser.add_argument("--epochs", type=int, default=15, help="most epochs of each fine-tuning")
    parser.add_argument("--lr", type=float, default=TrainSettings().lr, help="learning rate of each fine-tuning")
    parser.add_argument("--strategy", choices=["active", "random", "both"], default="both")
    parser.add_argument("--ema", type=float, default=RetrainSettings().ema, help="moving-average decay of fine-tuning (as [retrain] ema; 0: off)")
    parser.add_argument("--weight", type=int, default=3, help="times each labelled message counts in training (as [retrain] annotation_weight, default 3)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="what to run; the saved results of the others are kept")
    parser.add_argument("--new-intents", nargs="*", help="the intents to withhold and learn in turn (default: every SNIPS intent)")
    parser.add_argument("--jobs", type=int, default=2, help="parts run at a time (one CPU thread each)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--plot", action="store_true", help="only redraw learning.png from the saved learning.json")
    args = parser.parse_args()
    saved = RESULTS / "learning.json"
    if args.plot:
        plot(json.loads(saved.read_text()), RESULTS / "learning.png")
        return
    if not (SNIPS / "train").is_dir():
        sys.exit(f"{SNIPS} not found: this benchmark needs ../shared/data/snips")
    torch.set_num_threads(1)
    data = deployment()
    settings = TrainSettings(epochs=args.epochs, lr=args.lr, patience=5, device="cpu", ema=args.ema)
    new_intents = sorted({e.intent for e in data.seed_set}) if args.new_intents is None else args.new_intents
    strategies = (["active", "random"] if args.strategy == "both" else [args.strategy]) if "loop" in args.parts else []

    log(f"first model: {len(data.seed_set)} examples")
    first = first_model(data.seed_set, data.dev)
    result: dict[str, object] = json.loads(saved.read_text()) if saved.exists() else {}
    with tempfile.TemporaryDirectory() as tmp, multiprocessing.get_context("spawn").Pool(args.jobs, maxtasksperchild=1) as pool:
        first.save(Path(tmp) / "first")
        first_dir = str(Path(tmp) / "first")
        # Longest parts first, so the last one to start is short.
        loops = {name: pool.apply_async(run_loop, (name, first_dir, settings, args.rounds, args.per_round, args.weight)) for name in strategies}
        gate = pool.apply_async(run_gate, (first_dir, settings, args.rounds * args.per_round)) if "gate" in args.parts else None
        learnt = {intent: pool.apply_async(run_new_intent, (intent, settings, args.weight)) for intent in new_intents} if "new-intents" in args.parts else {}
        result |= {name: job.get() for name, job in loops.items()}
        if gate is not None:
            result["gate_rejected_corrupt"] = gate.get()
        per_intent = {intent: job.get() for intent, job in learnt.items()}
    if isinstance(result.get("active"), list) and isinstance(result.get("random"), list):
        result["labels_to_match_random"] = labels_to_match(result["active"], result["random"][-1]["intent_accuracy"])  # type: ignore[index]
    for intent, row in per_intent.items():
        row["from_the_start"] = scores(first, [e for e in data.test if e.intent == intent])["intent_accuracy"]
    if per_intent:
        accuracies = [float(row["accuracy"]) for row in per_intent.values()]  # type: ignore[arg-type]
        drops = [float(row["old_intents_drop"]) for row in per_intent.values()]  # type: ignore[arg-type]
        result |= {
            "new_intents": per_intent,
            "new_intent_accuracy": round(statistics.mean(accuracies), 4),
            "new_intent_accuracy_min": min(accuracies),
            "old_intents_drop": round(statistics.mean(drops), 4),
            "old_intents_drop_max": max(drops),
        }
    publish("learning", result, table(result, args), args.json)
    plot(result, RESULTS / "learning.png")


def plot(result: dict[str, object], path: Path) -> None:
    """Intent accuracy and slot F1 per round for both strategies, as a PNG line chart."""
    width, height, left, top, inner_w, inner_h = 640, 360, 64, 34, 540, 260
    series = [
        (name, metric, colour)
        for name, shades in (("active", ((36, 84, 214), (126, 160, 240))), ("random", ((214, 48, 42), (240, 150, 140))))
        for metric, colour in zip(("intent_accuracy", "slot_f1"), shades)
    ]
    points = [p for name, *_ in series for p in result.get(name, [])]  # type: ignore[attr-defined]
    values = [p[m] for p in points for m in ("intent_accuracy", "slot_f1")]
    low, high = min(values) - 0.01, max(values) + 0.01
    most = max(p["labels"] for p in points) or 1

    def xy(point: dict[str, float], metric: str) -> tuple[float, float]:
        return left + inner_w * point["labels"] / most, top + inner_h * (1 - (point[metric] - low) / (high - low))

    font = ImageFont.load_default(12)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((left, 10), "SNIPS test: intent accuracy and slot F1 by labels", fill="black", font=font)
    draw.rectangle((left, top, left + inner_w, top + inner_h), outline=(153, 153, 153))
    for step in range(6):
        y = top + inner_h * (1 - step / 5)
        draw.text((left - 6, y), f"{low + (high - low) * step / 5:.3f}", fill="black", font=font, anchor="rm")
    for point in result.get("active", []):  # type: ignore[attr-defined]
        draw.text((left + inner_w * point["labels"] / most, top + inner_h + 6), str(point["labels"]), fill="black", font=font, anchor="ma")
    legend_x = left
    for name, metric, colour in series:
        line = [xy(p, metric) for p in result.get(name, [])]  # type: ignore[attr-defined]
        draw.line(line, fill=colour, width=2)
        for x, y in line:
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
        label = f"{name}: {metric.replace('_', ' ')}"
        draw.text((legend_x, height - 22), label, fill=colour, font=font)
        legend_x += round(font.getlength(label)) + 18
    image.save(path, format="PNG")


def table(result: dict[str, object], args: argparse.Namespace) -> str:
    lines = [
        "# Learning-loop benchmark (python -m bench.learning)",
        "",
        f"SNIPS: first model on 10% of train, then {args.rounds} rounds of traffic; {args.per_round} labels per round chosen by the",
        f"active-learning queue (disagreement between model versions, then entropy) or at random; fine-tuned from the live model ({args.epochs} epochs max, lr {args.lr:g}),",
        f"each labelled message counted {args.weight} time(s).",
        "Scores on the SNIPS test set (700).",
        "",
        "| round | labels | active intent acc | active slot F1 | random intent acc | random slot F1 |",
        "|---|---|---|---|---|---|",
    ]
    active, random_ = result.get("active", []), result.get("random", [])
    assert isinstance(active, list) and isinstance(random_, list)
    for round_, (a, r) in enumerate(zip(active, random_)):
        lines.append(f"| {round_} | {a['labels']} | {a['intent_accuracy']:.4f} | {a['slot_f1']:.4f} | {r['intent_accuracy']:.4f} | {r['slot_f1']:.4f} |")
    lines += [
        "",
        f"- labels for active learning to reach random's final accuracy: {result.get('labels_to_match_random')}",
        f"- gate rejected the candidate trained on shuffled labels: {result.get('gate_rejected_corrupt')}",
    ]
    per_intent = result.get("new_intents", {})
    assert isinstance(per_intent, dict)
    if per_intent:
        lines += [
            "",
            f"New intents: each intent in turn withheld from the first model, then learnt from {NEWCOMERS} labelled messages as `slmbot",
            f"retrain` does (its weighting, growth and moving average), and with the old intents' examples also distilled from the model before (`[retrain] distill = {DISTILL}`).",
            "Test accuracy on the new intent, the other intents' change, and the first model's accuracy on it (it had the intent from the start):",
            "",
            "| new intent | learnt (default) | other intents | learnt, distilled | other intents | had it from the start |",
            "|---|---|---|---|---|---|",
        ]
        for intent, row in per_intent.items():
            distilled = row["distilled"]
            lines.append(
                f"| {intent} | {row['accuracy']:.4f} | {-row['old_intents_drop']:+.4f} | {distilled['accuracy']:.4f} | "
                f"{-distilled['old_intents_drop']:+.4f} | {row['from_the_start']:.4f} |"
            )
        distilled_rows = [row["distilled"] for row in per_intent.values()]
        lines.append(
            f"| mean (worst) | {result['new_intent_accuracy']:.4f} ({result['new_intent_accuracy_min']:.4f}) | "
            f"{-float(result['old_intents_drop']):+.4f} ({-float(result['old_intents_drop_max']):+.4f}) | "  # type: ignore[arg-type]
            f"{statistics.mean(r['accuracy'] for r in distilled_rows):.4f} ({min(r['accuracy'] for r in distilled_rows):.4f}) | "
            f"{-statistics.mean(r['old_intents_drop'] for r in distilled_rows):+.4f} ({-max(r['old_intents_drop'] for r in distilled_rows):+.4f}) | |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
