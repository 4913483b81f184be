"""Password checks, a few at a time, with attempts from suspect addresses served last.

bcrypt is the one costly step of a login: each check holds a core for a few hundred milliseconds.
Running more checks at once than there are cores only makes every check slower, so they queue
here for one of ``slots``; and an attempt from an address whose logins keep failing (a flood that
its buckets still let through) waits until no other attempt does. Such a flood then uses only
the capacity that real logins leave idle, instead of a share of it.
Pure asyncio: nothing here knows about HTTP, the store or Ray.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class PasswordCheckQueue:
    """At most ``slots`` password checks at once; the others wait, suspects behind the rest.

    Used from one event loop (the API server's); waiting holds no loop-bound state between calls.
    """

    def __init__(self, slots: int) -> None:
        self._free = slots
        # Waiters in arrival order: index 0 the others, index 1 the suspects.
        self._waiting: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (
            deque(),
            deque(),
        )

    @property
    def waiting(self) -> tuple[int, int]:
        """How many attempts wait: (others, suspects)."""
        return len(self._waiting[0]), len(self._waiting[1])

    @asynccontextmanager
    async def slot(self, suspect: bool) -> AsyncIterator[None]:
        """Hold one of the slots while the block runs (a password check)."""
        await self._acquire(suspect)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, suspect: bool) -> None:
        if self._free:  # a free slot means nobody waits: a release serves the waiting first
            self._free -= 1
            return
        queue = self._waiting[suspect]
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(granted)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._release()  # granted just as the request went away: pass the slot on
            elif granted in queue:
                queue.remove(granted)
            raise

    def _release(self) -> None:
        for queue in self._waiting:
            while queue:
                granted = queue.popleft()
                if not granted.done():
                    granted.set_result(None)
                    return
        self._free += 1
