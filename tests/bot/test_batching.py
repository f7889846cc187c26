"""Micro-batching: concurrent requests share one call, a lone one waits for nothing, errors reach every waiter."""

import asyncio
import threading
import time

import pytest

from bot.batching import MicroBatcher


def test_requests_that_arrive_while_a_batch_runs_form_the_next_batch():
    sizes: list[int] = []
    first_started = threading.Event()

    def run_batch(items: list[int]) -> list[int]:
        sizes.append(len(items))
        first_started.set()
        time.sleep(0.05)
        return [item * 10 for item in items]

    async def scenario():
        batcher = MicroBatcher(run_batch, max_batch=4)
        lone = await batcher.submit(1)
        first = asyncio.create_task(batcher.submit(2))
        await asyncio.sleep(0.01)  # the first batch [2] is now running
        rest = await asyncio.gather(*(batcher.submit(n) for n in range(3, 9)))
        return lone, await first, rest

    lone, first, rest = asyncio.run(scenario())
    assert (lone, first, rest) == (10, 20, [30, 40, 50, 60, 70, 80])
    assert sizes == [1, 1, 4, 2]


def test_a_coroutine_batch_runs_on_the_event_loop_and_batches_the_same_way():
    sizes: list[int] = []
    threads: set[int] = set()

    async def run_batch(items: list[int]) -> list[int]:
        sizes.append(len(items))
        threads.add(threading.get_ident())
        await asyncio.sleep(0.02)  # a round trip: requests arriving meanwhile form the next batch
        return [-item for item in items]

    async def scenario():
        batcher = MicroBatcher(run_batch)
        first = asyncio.create_task(batcher.submit(1))
        await asyncio.sleep(0.005)
        rest = await asyncio.gather(*(batcher.submit(n) for n in range(2, 6)))
        return await first, rest, threading.get_ident()

    first, rest, loop_thread = asyncio.run(scenario())
    assert (first, rest, sizes) == (-1, [-2, -3, -4, -5], [1, 4])
    assert threads == {loop_thread}


def test_a_failing_batch_fails_each_of_its_requests_and_the_next_batch_runs():
    calls = 0

    def run_batch(items: list[str]) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database down")
        return items

    async def scenario():
        batcher = MicroBatcher(run_batch)
        with pytest.raises(RuntimeError, match="database down"):
            await batcher.submit("a")
        return await batcher.submit("b")

    assert asyncio.run(scenario()) == "b"


def test_batched_parses_equal_single_parses(example_model):
    from bot.understanding import Lexicon, LocalUnderstanding
    from slm.nlu import NLUModel

    understanding = LocalUnderstanding(NLUModel.load(example_model), Lexicon.from_entries([]), "v1")
    texts = ["where is my order A-1042?", "hi", "/order_status", "I want to return the yoga mat from order C-3310", "thanks"]
    batched = understanding.parse_many(texts)
    for text, parse in zip(texts, batched):
        single = understanding.parse(text)
        spans = [(e.entity, e.value, e.start, e.end) for e in parse.entities]
        assert (parse.intent, parse.text, spans) == (single.intent, single.text, [(e.entity, e.value, e.start, e.end) for e in single.entities])
        # Padding in a batch changes float rounding, nothing more.
        assert parse.confidence == pytest.approx(single.confidence, abs=1e-4)
        assert [e.confidence for e in parse.entities] == pytest.approx([e.confidence for e in single.entities], abs=1e-4)
