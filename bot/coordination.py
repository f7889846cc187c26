"""What processes serving one bot must agree on: turn order per conversation, seen updates, fan-out.

Two implementations of one interface. `LocalCoordinator` is the single-process default (asyncio
locks, a bounded memory of seen ids, in-process queues). `RedisCoordinator` lets several
workers on several hosts share the work:

- turn order: a FIFO ticket queue per conversation. A request takes a ticket on arrival (Redis
  INCR), waits until the conversation's ``serving`` counter reaches it, and advances it when
  done, so one customer's messages run one at a time and in arrival order whichever worker
  took them. The holder keeps a lease alive while it works; if a worker dies mid-turn its lease
  expires and the next ticket proceeds instead of the conversation hanging forever.
- seen ids: ``SET NX EX`` (a retried Telegram update is processed once across workers);
- fan-out: Redis pub/sub, so a WebSocket on worker A receives a reply produced on worker B.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import OrderedDict, defaultdict
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Protocol

from bot.batching import MicroBatcher

if TYPE_CHECKING:
    from redis.commands.core import AsyncScript

log = logging.getLogger(__name__)
SEEN_MEMORY = 100_000


class Coordinator(Protocol):
    """The per-conversation order, deduplication and message fan-out that channels rely on."""

    def hold(self, key: str) -> Any:
        """Async context manager: exclusive, in arrival order, for conversation ``key``."""
        ...

    async def first_time(self, key: str, ttl_s: int = 86_400) -> bool:
        """True the first time ``key`` is seen (within ``ttl_s``), False on every repeat."""
        ...

    async def forget(self, key: str) -> None:
        """Unsee ``key``: its work failed and a retry must be processed."""
        ...

    def listen(self, key: str) -> Any:
        """Async context manager yielding an `asyncio.Queue` of the messages published to ``key``."""
        ...

    async def publish(self, key: str, message: dict[str, Any]) -> int:
        """Send ``message`` to every listener of ``key``; how many processes had one (0: nobody)."""
        ...

    async def ping(self) -> None:
        """Raise when the shared backend is unreachable (health checks)."""
        ...

    async def close(self) -> None: ...


class KeyedLocks:
    """One asyncio lock per key (FIFO wake-up), dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self.locks: dict[str, asyncio.Lock] = {}
        self.users: defaultdict[str, int] = defaultdict(int)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self.locks.setdefault(key, asyncio.Lock())
        self.users[key] += 1
        try:
            async with lock:
                yield
        finally:
            self.users[key] -= 1
            if not self.users[key]:
                del self.locks[key], self.users[key]


class LocalHub:
    """In-process fan-out: key -> the queues of this process's listeners."""

    def __init__(self) -> None:
        self.queues: defaultdict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)

    @asynccontextmanager
    async def listen(self, key: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.queues[key].add(queue)
        try:
            yield queue
        finally:
            self.queues[key].discard(queue)
            if not self.queues[key]:
                del self.queues[key]

    def deliver(self, key: str, message: dict[str, Any]) -> int:
        for queue in self.queues.get(key, ()):
            queue.put_nowait(message)
        return int(key in self.queues)


class LocalCoordinator:
    """One process: nothing shared, nothing to reach."""

    def __init__(self) -> None:
        self.locks = KeyedLocks()
        self.hub = LocalHub()
        self.seen: OrderedDict[str, None] = OrderedDict()

    def hold(self, key: str) -> Any:
        return self.locks.hold(key)

    async def first_time(self, key: str, ttl_s: int = 86_400) -> bool:
        if key in self.seen:
            return False
        self.seen[key] = None
        if len(self.seen) > SEEN_MEMORY:
            self.seen.popitem(last=False)
        return True

    async def forget(self, key: str) -> None:
        self.seen.pop(key, None)

    def listen(self, key: str) -> Any:
        return self.hub.listen(key)

    async def publish(self, key: str, message: dict[str, Any]) -> int:
        return self.hub.deliver(key, message)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


# KEYS: tickets, serving, lease. ARGV: grant_ms, idle_ms. The first ticket of an idle queue is served at once.
# Returns {ticket, 1 when it may proceed now}: a customer's message is rarely queued behind another, and
# saying so here spares a round trip per turn. Ticket 1 means the queue had expired (idle): a serving
# counter left over from before is stale (the queue's keys did not always expire together) and starts over.
TAKE_TICKET = """
local ticket = redis.call('INCR', KEYS[1])
if ticket == 1 or redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SET', KEYS[2], ticket) end
local now = 0
if tonumber(redis.call('GET', KEYS[2])) == ticket then
  redis.call('SET', KEYS[3], ticket, 'PX', ARGV[1])
  now = 1
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return {ticket, now}
"""

# KEYS: tickets, serving, lease. ARGV: ticket, lease_ms. 1 when the ticket may proceed.
# A lease that is gone while an earlier ticket is being served means its holder died: skip it.
TRY_TURN = """
local ticket = tonumber(ARGV[1])
local serving = tonumber(redis.call('GET', KEYS[2]) or '0')
if serving < ticket and redis.call('EXISTS', KEYS[3]) == 0 then
  serving = serving + 1
  redis.call('SET', KEYS[2], serving, 'KEEPTTL')
  redis.call('SET', KEYS[3], serving, 'PX', ARGV[2])
end
if serving == ticket then
  redis.call('SET', KEYS[3], ticket, 'PX', ARGV[2])
  return 1
end
return 0
"""

# KEYS: lease. ARGV: ticket, lease_ms. Keep the lease while the turn runs.
EXTEND = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

# KEYS: tickets, serving, lease. ARGV: ticket, grant_ms. Serve the next ticket, granting it a lease.
# The counters keep the idle expiry TAKE_TICKET gave them (a plain SET would drop it, and the key would stay forever).
RELEASE = """
local ticket = tonumber(ARGV[1])
if tonumber(redis.call('GET', KEYS[2]) or '0') ~= ticket then return 0 end
redis.call('SET', KEYS[2], ticket + 1, 'KEEPTTL')
if tonumber(redis.call('GET', KEYS[1]) or '0') > ticket then
  redis.call('SET', KEYS[3], ticket + 1, 'PX', ARGV[2])
else
  redis.call('DEL', KEYS[3])
end
return 1
"""


@dataclass(frozen=True)
class ScriptCall:
    """One call of a Redis script: what `RedisCoordinator` batches into a pipeline."""

    script: AsyncScript
    keys: list[str]
    args: list[Any]


class RedisCoordinator:
    """Workers on any number of hosts sharing one Redis."""

    def __init__(self, url: str, prefix: str = "slmbot", lease_ms: int = 30_000, idle_ms: int = 3_600_000) -> None:
        from redis.asyncio import Redis

        self.client = Redis.from_url(url)
        self.prefix, self.lease_ms, self.idle_ms = prefix, lease_ms, idle_ms
        self.take_ticket = self.client.register_script(TAKE_TICKET)
        self.try_turn = self.client.register_script(TRY_TURN)
        self.extend = self.client.register_script(EXTEND)
        self.release = self.client.register_script(RELEASE)
        # The turns starting or ending at once send their script calls in one pipeline: redis-py
        # spends ~100 us of CPU on a call of its own (pool, packing, a socket write and read).
        self.scripts: MicroBatcher[ScriptCall, Any] = MicroBatcher(self._run_scripts)
        self.hub = LocalHub()
        self.pubsub = self.client.pubsub()
        self.reader: asyncio.Task[None] | None = None
        self.worker = uuid.uuid4().hex
        # The pub/sub connection is used by the reader task alone (redis-py's is not safe to share):
        # listeners queue their (un)subscriptions for it.
        self.changes: asyncio.Queue[tuple[bool, str]] = asyncio.Queue()

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        keys = [f"{self.prefix}:turn:{key}:{part}" for part in ("tickets", "serving", "lease")]
        ticket, now = await self._script(self.take_ticket, keys, [self.lease_ms, self.idle_ms])
        delay = 0.0005
        while not now and not await self._script(self.try_turn, keys, [ticket, self.lease_ms]):
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.02)
        keeper = asyncio.create_task(self._keep_lease(keys[2], ticket))
        try:
            yield
        finally:
            keeper.cancel()
            await asyncio.shield(self._script(self.release, keys, [ticket, self.lease_ms]))

    async def _script(self, script: AsyncScript, keys: list[str], args: list[Any]) -> Any:
        """Run one of the turn queue's scripts, in the pipeline of whatever calls are waiting."""
        result = await self.scripts.submit(ScriptCall(script, keys, args))
        if isinstance(result, Exception):
            raise result
        return result

    async def _run_scripts(self, calls: list[ScriptCall]) -> list[Any]:
        """Each call's result, or the error Redis answered it with."""
        from redis.exceptions import NoScriptError

        results = await self._pipeline(calls)
        # A restarted Redis has forgotten the scripts, and a call it could not find did not run.
        missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        if missing:
            for script in {id(calls[i].script): calls[i].script for i in missing}.values():
                await self.client.script_load(script.script)
            for i, result in zip(missing, await self._pipeline([calls[i] for i in missing])):
                results[i] = result
        return results

    async def _pipeline(self, calls: list[ScriptCall]) -> list[Any]:
        async with self.client.pipeline(transaction=False) as pipeline:
            for call in calls:
                pipeline.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
            return await pipeline.execute(raise_on_error=False)

    async def _keep_lease(self, lease_key: str, ticket: int) -> None:
        while True:
            await asyncio.sleep(self.lease_ms / 3000)
            if not await self._script(self.extend, [lease_key], [ticket, self.lease_ms]):
                log.error("lost the turn lease of %s (ticket %d): another worker may now run this conversation", lease_key, ticket)
                return

    async def first_time(self, key: str, ttl_s: int = 86_400) -> bool:
        return bool(await self.client.set(f"{self.prefix}:seen:{key}", 1, nx=True, ex=ttl_s))

    async def forget(self, key: str) -> None:
        await self.client.delete(f"{self.prefix}:seen:{key}")

    @asynccontextmanager
    async def listen(self, key: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        if self.reader is None:
            self.reader = asyncio.create_task(self._read())
        channel = f"{self.prefix}:out:{key}"
        first = key not in self.hub.queues
        async with self.hub.listen(key) as queue:
            if first:
                self.changes.put_nowait((True, channel))
            try:
                yield queue
            finally:
                if len(self.hub.queues[key]) == 1:  # the last listener of this process leaves
                    self.changes.put_nowait((False, channel))

    async def publish(self, key: str, message: dict[str, Any]) -> int:
        return int(await self.client.publish(f"{self.prefix}:out:{key}", json.dumps(message)))

    async def _read(self) -> None:
        """Apply queued (un)subscriptions, deliver what arrives; within 20 ms of either."""
        skip = len(f"{self.prefix}:out:")
        # A subscription of its own keeps the connection open while no conversation is listened to.
        await self.pubsub.subscribe(f"{self.prefix}:worker:{self.worker}")
        while True:
            try:
                while not self.changes.empty():
                    subscribe, channel = self.changes.get_nowait()
                    await (self.pubsub.subscribe(channel) if subscribe else self.pubsub.unsubscribe(channel))
                message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=0.02)
            except asyncio.CancelledError:
                raise
            except Exception:  # a dropped connection: redis-py reconnects and resubscribes on the next call
                log.exception("reading Redis pub/sub failed; retrying")
                await asyncio.sleep(0.5)
                continue
            if message is not None and message["type"] == "message":
                self.hub.deliver(message["channel"].decode()[skip:], json.loads(message["data"]))

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        await self.pubsub.aclose()
        await self.client.aclose()


def make_coordinator(redis_url: str, prefix: str = "slmbot") -> Coordinator:
    """Redis-backed when a URL is configured, in-process otherwise."""
    return RedisCoordinator(redis_url, prefix) if redis_url else LocalCoordinator()
