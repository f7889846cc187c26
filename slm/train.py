"""The one training loop: AdamW, warm-up + linear decay, early stopping on dev, bf16 on CUDA, DDP.

Under ``torchrun`` every process trains on its own shard of each epoch (gloo on CPU, NCCL on
CUDA) and evaluates the same dev set with the same synchronised weights, so all ranks take
the same early-stopping decisions without extra communication.
"""

from __future__ import annotations

import math
import os
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Generic, Iterator, Sequence, TypeVar

import torch
from torch import distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel

from slm.settings import TrainSettings

Item = TypeVar("Item")
Collate = Callable[[Sequence[Item], torch.device], tuple[object, object]]


@dataclass
class EpochReport:
    """What one epoch did, for progress display."""

    epoch: int
    loss: float
    scores: dict[str, float]
    best: bool
    epochs: int  # the most this run will train (``epochs``, or more with ``min_steps``)


@dataclass
class FitResult:
    """Outcome of `fit`: the best dev scores (whose weights the model now holds)."""

    scores: dict[str, float]
    best_epoch: int
    epochs_run: int
    seconds: float
    device: str
    world_size: int


def resolve_device(name: str) -> torch.device:
    """``auto`` picks this process's CUDA device when there is one, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda requested but no CUDA device is available")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if name != "cpu":
        raise ValueError(f"unknown device '{name}' (use auto, cpu or cuda)")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python and torch so the same command gives the same model."""
    random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class World:
    """This process's place in a (possibly single-process) distributed run."""

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        """Only the main process writes files and prints."""
        return self.rank == 0


def join_world(device: torch.device) -> World:
    """Join the process group when started by ``torchrun``; otherwise a world of one."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World()
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return World(dist.get_rank(), dist.get_world_size())


def is_main_process() -> bool:
    """False on every rank but 0 of a distributed run, so only one process writes files."""
    return not dist.is_initialized() or dist.get_rank() == 0


def from_main(world: World, make: Callable[[], bytes]) -> bytes:
    """``make()`` run on rank 0 only, its result sent to every rank (e.g. a trained tokenizer)."""
    if world.size == 1:
        return make()
    payload = [make() if world.is_main else None]
    dist.broadcast_object_list(payload, src=0)
    return payload[0]  # type: ignore[return-value]


def _linear_schedule(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


def _ramped_ema(decay: float) -> Callable[[list[torch.Tensor], list[torch.Tensor], torch.Tensor], None]:
    """An exponential moving average of the weights whose decay grows with the steps averaged,
    (1 + n) / (10 + n) up to ``decay``: a run of a few dozen steps (a small project) averages
    over its recent steps, not over the near-random weights of its first ones."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], steps: torch.Tensor) -> None:
        n = float(steps)
        torch._foreach_lerp_(averaged, current, 1.0 - min(decay, (1.0 + n) / (10.0 + n)))

    return update


class _Trainer(Generic[Item]):
    """State of one `fit` call (kept in an object so the loop body stays readable)."""

    def __init__(
        self,
        model: nn.Module,
        items: Sequence[Item],
        length: Callable[[Item], int] | None,
        redraw: Callable[[Sequence[Item]], Sequence[Item]] | None,
        settings: TrainSettings,
        device: torch.device,
        world: World,
    ):
        self.model, self.items, self.length, self.redraw, self.settings = model, items, length, redraw, settings
        self.device, self.world = device, world
        self.wrapped: nn.Module = model
        if world.size > 1:
            self.wrapped = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        decay = [p for n, p in model.named_parameters() if p.dim() > 1 and "embed" not in n]
        no_decay = [p for n, p in model.named_parameters() if not (p.dim() > 1 and "embed" not in n)]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=settings.lr,
        )
        self.per_rank = len(items) // world.size
        self.steps_per_epoch = max(1, math.ceil(self.per_rank / settings.batch_size))
        self.epochs, self.patience = settings.planned(self.steps_per_epoch)
        total = self.steps_per_epoch * self.epochs
        schedule = _linear_schedule(max(1, int(total * settings.warmup)), total)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self.generator = torch.Generator().manual_seed(settings.seed)
        self.autocast = device.type == "cuda"
        self.average = AveragedModel(model, multi_avg_fn=_ramped_ema(settings.ema)) if settings.ema > 0 else None

    def epoch(self, collate: Collate) -> float:
        self.model.train()
        items = self.items if self.redraw is None else self.redraw(self.items)
        order = torch.randperm(len(items), generator=self.generator).tolist()
        mine = order[self.world.rank :: self.world.size][: self.per_rank]
        total, steps = 0.0, 0
        for batch in self._batches(items, mine):
            chunk = [items[i] for i in batch]
            inputs, targets = collate(chunk, self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                _, loss = self.wrapped(inputs, targets)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.model.parameters(), self.settings.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            if self.average is not None:
                self.average.update_parameters(self.model)
            total, steps = total + loss.item(), steps + 1
        return total / max(1, steps)

    @contextmanager
    def judged_weights(self) -> Iterator[None]:
        """Inside, the model holds the weights to evaluate and keep: the moving average when
        ``ema`` is on (a smoother pick than the last step's), else its own."""
        if self.average is None:
            yield
            return
        own = [p.detach().clone() for p in self.model.parameters()]
        with torch.no_grad():
            for parameter, averaged in zip(self.model.parameters(), self.average.module.parameters()):
                parameter.copy_(averaged)
        try:
            yield
        finally:
            with torch.no_grad():
                for parameter, kept in zip(self.model.parameters(), own):
                    parameter.copy_(kept)

    def _batches(self, items: Sequence[Item], indices: list[int]) -> list[list[int]]:
        """Batches of similar length (less padding), in random order.

        Sorting happens within windows of 50 batches, so batches still mix across epochs.
        """
        size = self.settings.batch_size
        if self.length is not None:
            window = size * 50
            indices = [
                i
                for start in range(0, len(indices), window)
                for i in sorted(indices[start : start + window], key=lambda i: self.length(items[i]))
            ]
        batches = [indices[start : start + size] for start in range(0, len(indices), size)]
        order = torch.randperm(len(batches), generator=self.generator).tolist()
        return [batches[i] for i in order]


def fit(
    model: nn.Module,
    items: Sequence[Item],
    collate: Collate,
    evaluate: Callable[[nn.Module], dict[str, float]],
    score_key: str,
    settings: TrainSettings,
    on_epoch: Callable[[EpochReport], None] | None = None,
    length: Callable[[Item], int] | None = None,
    redraw: Callable[[Sequence[Item]], Sequence[Item]] | None = None,
) -> FitResult:
    """Train ``model`` in place, keeping the weights of the epoch with the best ``score_key``
    (with ``settings.ema``, the moving average of the weights is what is scored and kept).

    Args:
        model: returns ``(output, loss)`` from ``model(inputs, targets)``; already on its device.
        items: training examples; ``collate(list_of_items, device)`` makes ``(inputs, targets)``.
        evaluate: dev scores of the (unwrapped) model; called in eval mode without gradients.
        score_key: the dev score to maximise; training stops after ``patience`` epochs without gain
            (both stretched by ``settings.min_steps`` on a small data set).
        length: an item's size; when given, batches group items of similar size.
        redraw: when given, each epoch trains on ``redraw(items)`` instead (as many, drawn
            afresh: augmented variants), batched by their own sizes.
    """
    device = next(model.parameters()).device
    world = join_world(device)
    trainer = _Trainer(model, items, length, redraw, settings, device, world)
    started = time.perf_counter()
    best_score, best_scores, best_epoch, best_state = -math.inf, {}, 0, None
    epoch = 0
    for epoch in range(1, trainer.epochs + 1):
        loss = trainer.epoch(collate)
        model.eval()
        with trainer.judged_weights():
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=trainer.autocast):
                scores = evaluate(model)
            improved = scores[score_key] > best_score
            if improved:
                best_score, best_scores, best_epoch = scores[score_key], scores, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if on_epoch is not None and world.is_main:
            on_epoch(EpochReport(epoch, loss, scores, improved, trainer.epochs))
        if epoch - best_epoch >= trainer.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return FitResult(best_scores, best_epoch, epoch, time.perf_counter() - started, str(device), world.size)
