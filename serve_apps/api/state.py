"""What every route can reach: settings, the store, the signing secret, the clock, the probes,
and what the API process keeps between requests (reader pool, credential cache, uploads).

The app is built around one ``PlatformState``; the API server actor builds it with the real store
actor and Ray-backed probes, and nothing in the routes knows where they come from.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, Protocol

import sqlite_utils
from fastapi import Depends, Request

from cvplatform.clock import Clock
from cvplatform.config import Settings
from cvplatform.schemas import Readiness
from serve_apps.api.audit import AuditTrail
from serve_apps.api.resumable import ResumableUploads
from serve_apps.auth.credential_cache import CredentialCache, KeyUseThrottle
from serve_apps.auth.throttle import LoginThrottle
from store.connections import ReaderPool
from store.operations import AsyncStoreOperations

# last_used_at is a hint for the key's owner, not a log: write it at most this often per key.
KEY_TOUCH_INTERVAL = timedelta(seconds=60)


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


class InferencePool(Protocol):
    """The inference pool as the API sees it (``serve_apps.inference.pool_view``)."""

    async def warm(self, model_id: str) -> dict[str, Any]: ...

    def summary(self) -> dict[str, Any]: ...


class AuthContext(Protocol):
    """What checking a request's credentials needs (``serve_apps.api.authn``): the management
    API's ``PlatformState`` and the inference pool's state both have it."""

    @property
    def jwt_secret(self) -> bytes: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def readers(self) -> ReaderPool: ...
    @property
    def credentials(self) -> CredentialCache: ...
    @property
    def key_use(self) -> KeyUseThrottle: ...
    @property
    def ops(self) -> AsyncStoreOperations: ...


def auth_context_parts(settings: Settings, store: StoreGateway, clock: Clock) -> dict[str, Any]:
    """An ``AuthContext``'s parts, made once per process that checks credentials (the API
    server, each inference replica): ``ops``, ``readers``, ``credentials``, ``key_use``."""
    return {
        "ops": AsyncStoreOperations(store, settings.store_call_timeout_s),
        "readers": ReaderPool(settings.db_path),
        "credentials": CredentialCache(timedelta(seconds=settings.auth_cache_s), clock),
        "key_use": KeyUseThrottle(KEY_TOUCH_INTERVAL, clock),
    }


@dataclass(frozen=True)
class PlatformState:
    settings: Settings
    store: StoreGateway
    jwt_secret: bytes
    clock: Clock
    readiness: Callable[[], Awaitable[Readiness]]
    background: BackgroundWork
    inference: InferencePool | None = None  # None where no pool runs (the route tests)
    # Built from the fields above: what the API process keeps between requests.
    ops: AsyncStoreOperations = field(init=False)
    readers: ReaderPool = field(init=False)
    credentials: CredentialCache = field(init=False)
    key_use: KeyUseThrottle = field(init=False)
    login_throttle: LoginThrottle = field(init=False)
    uploads: ResumableUploads = field(init=False)
    audit: AuditTrail = field(init=False)

    def __post_init__(self) -> None:
        for name, part in auth_context_parts(self.settings, self.store, self.clock).items():
            object.__setattr__(self, name, part)
        throttle = LoginThrottle.from_settings(self.settings, self.clock)
        object.__setattr__(self, "login_throttle", throttle)
        uploads = ResumableUploads(
            self.settings.staging_dir / "resumable", self.settings.upload_expiry_s, self.clock
        )
        object.__setattr__(self, "uploads", uploads)
        audit = AuditTrail.from_settings(self.settings, self.ops, self.clock)
        object.__setattr__(self, "audit", audit)


def platform(request: Request) -> PlatformState:
    state: PlatformState = request.app.state.platform
    return state


async def reader(request: Request) -> AsyncIterator[sqlite_utils.Database]:
    """A read-only connection for this request (dependency), back to the pool when it ends."""
    with platform(request).readers.borrow() as db:
        yield db


ReadDb = Annotated[sqlite_utils.Database, Depends(reader)]
