"""Latency and throughput measurement shared by the benchmarks."""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Sequence


def latency_ms(parse_one: Callable[[str], object], texts: Sequence[str], warmup: int = 20) -> tuple[float, float]:
    """p50 and p99 milliseconds of parsing one text at a time."""
    for text in texts[:warmup]:
        parse_one(text)
    samples = []
    for text in texts:
        started = time.perf_counter()
        parse_one(text)
        samples.append((time.perf_counter() - started) * 1000)
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49], cuts[98]


def throughput(parse_batch: Callable[[Sequence[str]], object], texts: Sequence[str], batch_size: int = 256) -> float:
    """Texts per second when parsed ``batch_size`` at a time."""
    parse_batch(texts[:batch_size])
    started = time.perf_counter()
    for start in range(0, len(texts), batch_size):
        parse_batch(texts[start : start + batch_size])
    return len(texts) / (time.perf_counter() - started)


def directory_mb(path: Path) -> float:
    """Size of every file under ``path`` in MiB."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 2**20


def log(message: str) -> None:
    """Progress on stderr, so stdout stays the result (a table or JSON)."""
    print(message, file=sys.stderr, flush=True)


def publish(name: str, data: object, markdown: str, as_json: bool) -> None:
    """Save ``bench/results/<name>.json`` and ``.md``; print the JSON or the table."""
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    (results / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    (results / f"{name}.md").write_text(markdown)
    print(json.dumps(data) if as_json else markdown)
