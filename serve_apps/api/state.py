"""What every route can reach: settings, the store, the signing secret, the clock, the probes.

The app is built around one ``PlatformState``; the API server actor builds it with the real store
actor and Ray-backed probes, and nothing in the routes knows where they come from.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

import sqlite_utils
from fastapi import Depends, Request

from cvplatform.clock import Clock
from cvplatform.config import Settings
from cvplatform.schemas import Readiness
from store.connections import open_reader


class StoreGateway(Protocol):
    """The store actor as the API sees it (``store.actor.StoreClient`` in the platform)."""

    async def call(self, operation: str, **kwargs: Any) -> Any: ...

    async def ping(self) -> dict[str, Any]: ...


class BackgroundWork(Protocol):
    """Work that outlives a request (Ray tasks in the platform); each call returns at once."""

    def convert_model(self, model_id: str) -> object: ...

    def validate_dataset(self, dataset_id: str) -> object: ...

    def preprocess_dataset(self, preprocessing_id: str) -> object: ...

    def wake_scheduler(self) -> object: ...


@dataclass(frozen=True)
class PlatformState:
    settings: Settings
    store: StoreGateway
    jwt_secret: bytes
    clock: Clock
    readiness: Callable[[], Awaitable[Readiness]]
    background: BackgroundWork


def platform(request: Request) -> PlatformState:
    state: PlatformState = request.app.state.platform
    return state


async def reader(request: Request) -> AsyncIterator[sqlite_utils.Database]:
    """A read-only connection for this request (dependency); closed when the request ends."""
    db = open_reader(platform(request).settings.db_path)
    try:
        yield db
    finally:
        db.conn.close()


ReadDb = Annotated[sqlite_utils.Database, Depends(reader)]
