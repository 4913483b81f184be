"""The inference pool's bounds on one replica: at most ``workers`` requests inferring at once, at
most ``queue_max`` waiting for a worker, none waiting longer than the queue timeout.

A request over the bound is refused at once (503 with ``Retry-After``), one that waited too long
is refused when its wait ends (503); either way it never reaches a model. The worker a request
holds is given back however the request ends (answered, failed, timed out, or its client gone).
Plain asyncio: the Serve deployment holds one ``Admission`` per replica.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from cvplatform.errors import InferenceQueueFull, InferenceQueueTimeout


class Admission:
    def __init__(
        self,
        workers: int,
        queue_max: int,
        queue_timeout_s: float,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if workers < 1 or queue_max < 0 or queue_timeout_s <= 0:
            raise ValueError(
                f"workers {workers} must be at least 1, queue_max {queue_max} at least 0, "
                f"queue_timeout_s {queue_timeout_s} positive"
            )
        self.workers = workers
        self.queue_max = queue_max
        self.queue_timeout_s = queue_timeout_s
        self._clock = clock
        self._free = asyncio.Semaphore(workers)
        self._busy = 0
        self._waiting = 0

    @property
    def busy(self) -> int:
        """Requests holding a worker now."""
        return self._busy

    @property
    def waiting(self) -> int:
        """Requests waiting for a worker now (the queue depth)."""
        return self._waiting

    def retry_after_s(self) -> int:
        # A rough wait for a place: the queue's share of its timeout, at least a second.
        share = self._waiting / max(self.queue_max, 1)
        return max(1, round(share * self.queue_timeout_s))

    @asynccontextmanager
    async def worker(self) -> AsyncIterator[float]:
        """Hold a worker for the block; yields how long the request waited for it, in seconds.

        Raises:
            InferenceQueueFull: every worker is busy and ``queue_max`` requests already wait.
            InferenceQueueTimeout: no worker came free within the queue timeout.
        """
        started = self._clock()
        if self._free.locked() and self._waiting >= self.queue_max:
            raise InferenceQueueFull(
                f"the inference queue is full ({self._waiting} requests wait for "
                f"{self.workers} busy workers); retry later",
                retry_after_s=self.retry_after_s(),
            )
        self._waiting += 1
        try:
            # Not wait_for: on 3.11 it can swallow a cancellation that comes as the worker is
            # granted, and a request whose client has gone would then run.
            async with asyncio.timeout(self.queue_timeout_s):
                await self._free.acquire()
        except TimeoutError:
            raise InferenceQueueTimeout(
                f"no inference worker came free within the queue timeout of "
                f"{self.queue_timeout_s:g} s; retry later",
                retry_after_s=self.retry_after_s(),
            ) from None
        finally:
            self._waiting -= 1
        self._busy += 1
        try:
            yield self._clock() - started
        finally:
            self._busy -= 1
            self._free.release()
