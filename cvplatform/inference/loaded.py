"""The models one replica holds open: at most ``capacity``, the least recently used closed first.

A model is loaded once however many requests ask for it at the same time (they wait for the one
load); a model closed while a request still runs on it is released when that request ends. A
model that was deleted or converted again since it was loaded is dropped on its next request.
Plain asyncio; the blocking load runs on a thread.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

from cvplatform.clock import to_iso, utc_now
from cvplatform.inference.served import ServedModel, ServingInput


@dataclass
class _Entry:
    model: ServedModel
    sha256: str
    users: int = 0
    closed: bool = False  # evicted or forgotten: released when its last user ends


class LoadedModels:
    def __init__(self, capacity: int, open_model: Callable[[ServingInput], ServedModel]) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self._open_model = open_model
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._loading: dict[str, asyncio.Future[_Entry]] = {}  # loads in progress

    def held(self) -> list[ServedModel]:
        """The models open now, most recently used last."""
        return [entry.model for entry in self._entries.values()]

    def holds(self, model_id: str) -> bool:
        return model_id in self._entries

    @asynccontextmanager
    async def using(self, record: ServingInput) -> AsyncIterator[ServedModel]:
        """The model open for the block (loaded first if it is not)."""
        entry = await self._entry(record)
        while entry.closed:  # closed by other loads while this request waited for its own
            entry = await self._entry(record)
        entry.users += 1
        entry.model.last_used_at = to_iso(utc_now())
        try:
            yield entry.model
        finally:
            entry.users -= 1
            if entry.closed and entry.users == 0:
                entry.model.release()

    async def load(self, record: ServingInput) -> ServedModel:
        """Open the model now if it is not (warming); returns it."""
        async with self.using(record) as model:
            return model

    def forget(self, model_id: str) -> bool:
        """Close a model (deleted, or no longer ready); False if it was not open."""
        entry = self._entries.pop(model_id, None)
        if entry is None:
            return False
        self._close(entry)
        return True

    def close_all(self) -> None:
        for model_id in list(self._entries):
            self.forget(model_id)

    async def _entry(self, record: ServingInput) -> _Entry:
        model_id = record.model_id
        sha256 = record.onnx.sha256 if record.onnx else ""
        entry = self._entries.get(model_id)
        if entry is not None and entry.sha256 != sha256:
            self.forget(model_id)  # converted again since: the old file is not what is served
            entry = None
        if entry is not None:
            self._entries.move_to_end(model_id)
            return entry
        loading = self._loading.get(model_id)
        if loading is None:
            # A task of its own: a requester that gives up (its client gone) neither stops the
            # load nor fails the others waiting for it; the model loaded is held either way.
            loading = asyncio.ensure_future(self._load(record, sha256))
            self._loading[model_id] = loading
            loading.add_done_callback(partial(self._loaded, model_id))
        return await asyncio.shield(loading)

    async def _load(self, record: ServingInput, sha256: str) -> _Entry:
        model = await asyncio.to_thread(self._open_model, record)
        entry = _Entry(model, sha256)
        self._entries[record.model_id] = entry
        self._evict_beyond_capacity()
        return entry

    def _loaded(self, model_id: str, loading: asyncio.Future[_Entry]) -> None:
        if self._loading.get(model_id) is loading:
            del self._loading[model_id]
        if not loading.cancelled():
            loading.exception()  # retrieved: its waiters get it; none may be left to

    def _evict_beyond_capacity(self) -> None:
        while len(self._entries) > self.capacity:
            _, oldest = self._entries.popitem(last=False)
            self._close(oldest)

    @staticmethod
    def _close(entry: _Entry) -> None:
        entry.closed = True
        if entry.users == 0:
            entry.model.release()
