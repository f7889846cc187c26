"""Serve many concurrent requests with one call: one model forward pass for all messages
waiting to be parsed, one database transaction for all turns waiting to be stored, one Redis
pipeline for all the turns starting or ending at once.

There is no timer: while a batch runs (blocking work in a worker thread, a coroutine on the
event loop), new requests queue up, and the next batch takes all of them (up to
``max_batch``). A lone request therefore waits for nothing, and under load the batches grow by
themselves.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Awaitable, Callable, Generic, Sequence, TypeVar, Union, cast

from anyio import to_thread

Item = TypeVar("Item")
Result = TypeVar("Result")


class MicroBatcher(Generic[Item, Result]):
    """``await submit(item)`` -> the result ``run_batch`` gave for that item.

    ``run_batch`` takes a list of items and returns one result per item, in order; when it
    raises, every item of that batch gets the exception. A plain function runs in a worker
    thread, a coroutine function on the event loop.
    """

    def __init__(
        self, run_batch: Callable[[list[Item]], Union[Sequence[Result], Awaitable[Sequence[Result]]]], max_batch: int = 64
    ) -> None:
        self.run_batch, self.max_batch = run_batch, max_batch
        self.on_loop = inspect.iscoroutinefunction(run_batch)
        self.waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self.drainer: asyncio.Task[None] | None = None  # held: the loop keeps only weak references to tasks

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self.waiting.append((item, future))
        if self.drainer is None or self.drainer.done():
            self.drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self.waiting:
            batch, self.waiting = self.waiting[: self.max_batch], self.waiting[self.max_batch :]
            try:
                results = await self._run([item for item, _ in batch])
            except Exception as error:  # every waiter of the batch learns why
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), result in zip(batch, results):
                if not future.done():
                    future.set_result(result)

    async def _run(self, items: list[Item]) -> Sequence[Result]:
        if self.on_loop:
            return await cast(Awaitable[Sequence[Result]], self.run_batch(items))
        return cast(Sequence[Result], await to_thread.run_sync(self.run_batch, items))
