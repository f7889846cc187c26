"""Run blocking work for many concurrent requests in one call: one model forward pass for all
messages waiting to be parsed, one database transaction for all turns waiting to be stored.

There is no timer: while a batch runs in its worker thread, new requests queue up, and the
next batch takes all of them (up to ``max_batch``). A lone request therefore waits for
nothing, and under load the batches grow by themselves.
"""

from __future__ import annotations

import asyncio
from typing import Callable, Generic, Sequence, TypeVar

from anyio import to_thread

Item = TypeVar("Item")
Result = TypeVar("Result")


class MicroBatcher(Generic[Item, Result]):
    """``await submit(item)`` -> the result ``run_batch`` gave for that item.

    ``run_batch`` takes a list of items and returns one result per item, in order; when it
    raises, every item of that batch gets the exception.
    """

    def __init__(self, run_batch: Callable[[list[Item]], Sequence[Result]], max_batch: int = 64) -> None:
        self.run_batch, self.max_batch = run_batch, max_batch
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
                results = await to_thread.run_sync(self.run_batch, [item for item, _ in batch])
            except Exception as error:  # every waiter of the batch learns why
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), result in zip(batch, results):
                if not future.done():
                    future.set_result(result)
