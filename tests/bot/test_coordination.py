"""Turn order, seen ids and fan-out, in one process and across processes sharing the machine's Redis."""

import asyncio
import uuid

import pytest

from bot.coordination import LocalCoordinator, RedisCoordinator


@pytest.fixture(params=["local", "redis"])
def make(request):
    """A factory of coordinators (closed by the scenario): with Redis, each one stands for a
    separate worker process; in-process, "every worker" is the same one."""
    if request.param == "local":
        shared = LocalCoordinator()
        return lambda: shared
    url, prefix = request.getfixturevalue("redis_url"), f"test-{uuid.uuid4().hex[:6]}"
    return lambda: RedisCoordinator(url, prefix)


def run(coroutine):
    return asyncio.run(coroutine)


def test_turns_of_one_conversation_run_one_at_a_time_in_arrival_order(make):
    async def scenario():
        workers = [make(), make()]
        log: list[str] = []

        async def turn(i: int) -> None:
            async with workers[i % 2].hold("web:alice"):
                log.append(f"start {i}")
                await asyncio.sleep(0.03)
                log.append(f"end {i}")

        for worker in workers:  # open connections and load the scripts before timing matters
            async with worker.hold("web:warm-up"):
                pass
        tasks = []
        for i in range(8):
            tasks.append(asyncio.create_task(turn(i)))
            await asyncio.sleep(0.01)  # arrival order: 0, 1, 2, ... while earlier turns still run
        await asyncio.gather(*tasks)
        for worker in {id(w): w for w in workers}.values():
            await worker.close()
        return log

    assert run(scenario()) == [entry for i in range(8) for entry in (f"start {i}", f"end {i}")]


def test_different_conversations_proceed_in_parallel(make):
    async def scenario():
        worker = make()
        inside = 0
        most = 0

        async def turn(key: str) -> None:
            nonlocal inside, most
            async with worker.hold(key):
                inside += 1
                most = max(most, inside)
                await asyncio.sleep(0.05)
                inside -= 1

        await asyncio.gather(*(turn(f"web:{i}") for i in range(5)))
        await worker.close()
        return most

    assert run(scenario()) == 5


def test_a_dead_holder_does_not_block_the_conversation_forever(redis_url):
    async def scenario():
        worker = RedisCoordinator(redis_url, prefix=f"test-{uuid.uuid4().hex[:6]}", lease_ms=300)
        keys = [f"{worker.prefix}:turn:web:bob:{part}" for part in ("tickets", "serving", "lease")]
        # A worker took the turn and died: it never releases and never renews its lease.
        await worker.take_ticket(keys=keys, args=[worker.lease_ms, worker.idle_ms])
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with worker.hold("web:bob"):
            waited = loop.time() - started
        await worker.close()
        return waited

    waited = run(scenario())
    assert 0.2 < waited < 2.0


def test_turns_starting_together_share_a_pipeline_and_survive_a_redis_that_forgot_the_scripts(redis_url):
    async def scenario():
        worker = RedisCoordinator(redis_url, prefix=f"test-{uuid.uuid4().hex[:6]}")
        pipelines: list[int] = []
        send = worker._pipeline

        async def counted(calls):
            pipelines.append(len(calls))
            return await send(calls)

        worker._pipeline = counted

        async def turn(key: str) -> None:
            async with worker.hold(key):
                await asyncio.sleep(0.01)

        await asyncio.gather(*(turn(f"web:{i}") for i in range(20)))
        together = list(pipelines)
        await worker.client.script_flush()  # as after a Redis restart
        await asyncio.gather(*(turn(f"web:{i}") for i in range(3)))
        await worker.close()
        return together, pipelines[len(together):]

    together, after_flush = run(scenario())
    assert sum(together) == 40 and len(together) < 10  # 20 tickets and 20 releases, a few round trips
    assert after_flush[:2] == [3, 3]  # every call missed its script, was loaded and sent again


def test_a_conversation_idle_past_the_expiry_starts_a_fresh_queue(redis_url):
    async def scenario():
        worker = RedisCoordinator(redis_url, prefix=f"test-{uuid.uuid4().hex[:6]}", idle_ms=60_000)
        tickets, serving = (f"{worker.prefix}:turn:web:carol:{part}" for part in ("tickets", "serving"))
        for _ in range(3):
            async with worker.hold("web:carol"):
                pass
        expiries = [await worker.client.pttl(tickets), await worker.client.pttl(serving)]
        # The queue's keys expire on their own clocks: the ticket counter goes first, as an hour of
        # silence can leave it.
        await worker.client.delete(tickets)
        async with asyncio.timeout(2):
            async with worker.hold("web:carol"):
                pass
        await worker.close()
        return expiries

    expiries = run(scenario())
    assert all(0 < ms <= 60_000 for ms in expiries)  # both counters expire when the conversation goes idle


def test_seen_ids_are_shared_and_can_be_forgotten(make):
    async def scenario():
        first, second = make(), make()
        key = f"update:{uuid.uuid4().hex}"
        results = [await first.first_time(key), await second.first_time(key)]
        await second.forget(key)
        results.append(await first.first_time(key))
        await first.close()
        await second.close()
        return results

    assert run(scenario()) == [True, False, True]


def test_a_message_published_anywhere_reaches_every_listener(make):
    async def scenario():
        here, there = make(), make()
        assert await there.publish("web:carol", {"text": "nobody listens"}) == 0
        async with here.listen("web:carol") as queue:
            await asyncio.sleep(0.1)  # the subscription reaches Redis
            assert await there.publish("web:carol", {"text": "hello"}) == 1
            received = await asyncio.wait_for(queue.get(), 5)
        await asyncio.sleep(0.1)
        assert await there.publish("web:carol", {"text": "gone"}) == 0
        await here.close()
        await there.close()
        return received

    assert run(scenario()) == {"text": "hello"}
