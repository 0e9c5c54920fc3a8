"""Micro-batching: requests that arrive together are scored in one forward pass.

Each request puts its encoded examples on a queue and awaits a future. One
worker task takes what is queued, waits up to ``max_wait`` seconds for more (up
to ``max_batch`` examples), runs the model once in a worker thread, and
answers every request of the batch. A request's examples stay in one batch
(a request may bring more than ``max_batch`` examples: it is then a batch alone).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any


class MicroBatcher:
    """Collect concurrent requests' examples into batches for ``run``.

    Args:
        run: Scores a list of examples; returns one result per example (called in a worker thread).
        max_batch: The most examples per forward pass.
        max_wait: Seconds to wait for more requests once one is queued.
        observe: Called with each batch's size (for the metrics).
    """

    def __init__(
        self,
        run: Callable[[list[Any]], list[Any]],
        max_batch: int = 32,
        max_wait: float = 0.005,
        observe: Callable[[int], None] | None = None,
    ) -> None:
        self._run = run
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._observe = observe or (lambda n: None)
        self._queue: asyncio.Queue[tuple[list[Any], asyncio.Future[list[Any]]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def submit(self, examples: list[Any]) -> list[Any]:
        """Score one request's examples along with whatever else is queued."""
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        await self._queue.put((examples, future))
        return await future

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        carry = None
        while True:
            batch = [carry or await self._queue.get()]
            carry = None
            size = len(batch[0][0])
            deadline = loop.time() + self.max_wait
            while size < self.max_batch:
                timeout = deadline - loop.time()
                try:
                    item = (
                        self._queue.get_nowait() if timeout <= 0 else await asyncio.wait_for(self._queue.get(), timeout)
                    )
                except (asyncio.QueueEmpty, asyncio.TimeoutError):
                    break
                if size + len(item[0]) > self.max_batch:
                    carry = item  # it opens the next batch
                    break
                batch.append(item)
                size += len(item[0])
            examples = [e for items, _ in batch for e in items]
            self._observe(len(examples))
            try:
                results = await loop.run_in_executor(None, self._run, examples)
            except Exception as e:  # every request of the batch gets the error
                for _, future in batch:
                    if not future.done():
                        future.set_exception(e)
                continue
            start = 0
            for items, future in batch:
                if not future.done():  # the client may have gone
                    future.set_result(results[start : start + len(items)])
                start += len(items)
