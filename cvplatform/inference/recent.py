"""The serving records of ready models, reused for a second or two.

Every prediction used to read its model's record from SQLite on the replica's event loop (about
a fifth of that loop's time under load, measured with py-spy on ``bench/load.py``). A ready
model's record is now reused for ``ttl`` (``CVP_AUTH_CACHE_S``, the same window in which a
revoked API key still works on the pool): a model deleted or converted again is let go within
it. A record that is not ready (or none) is never kept, so a model that becomes ready is served
at once. Pure: the clock is passed in.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta

from cvplatform.clock import Clock
from cvplatform.inference.served import ServingInput


class RecentServingInputs:
    """A small LRU of ready models' serving records, each good for ``ttl``. Used from the
    replica's event loop only."""

    def __init__(self, ttl: timedelta, clock: Clock, max_entries: int = 1_000) -> None:
        self._ttl = ttl
        self._clock = clock
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[datetime, ServingInput]] = OrderedDict()

    def read(
        self, model_id: str, read_store: Callable[[str], ServingInput | None]
    ) -> ServingInput | None:
        now = self._clock()
        found = self._entries.get(model_id)
        if found is not None:
            read_at, kept = found
            if read_at <= now < read_at + self._ttl:
                self._entries.move_to_end(model_id)
                return kept
            del self._entries[model_id]
        record = read_store(model_id)
        if record is not None and record.status == "ready" and self._ttl > timedelta(0):
            self._entries[model_id] = (now, record)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return record
