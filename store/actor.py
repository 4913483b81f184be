"""The store actor: a thin Ray shell around :class:`store.writer.StoreWriter`.

It is named, lives in the platform's namespace, runs one method at a time (the single writer) and
is restarted by Ray if it dies. Calls are not retried: a write in flight when the actor died is
reported as ``StoreUnavailable`` rather than applied twice.
"""

from __future__ import annotations

import logging
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

from cvplatform import RAY_NAMESPACE
from cvplatform.config import Settings
from cvplatform.errors import CvpError, InvalidInput, StoreUnavailable
from cvplatform.jsonlog import configure_logging
from store.lock import DataDirLock
from store.schema import LATEST_VERSION
from store.writer import StoreWriter, sqlite_errors_translated

STORE_ACTOR_NAME = "cvp-store"
log = logging.getLogger("cvp.store")


class StoreActor:
    def __init__(self, settings: Settings) -> None:
        configure_logging(settings, "store")
        # A restarted actor may start while its dead predecessor's lock is being released.
        self._lock = DataDirLock(settings.data_dir).acquire(wait_s=15.0)
        self._writer = StoreWriter(settings.db_path, settings.store_busy_timeout_s)
        log.info("store ready", extra={"db": str(settings.db_path)})

    def call(self, operation: str, kwargs: dict[str, Any]) -> Any:
        if operation not in StoreWriter.OPERATIONS:
            raise InvalidInput(f"the store has no operation {operation!r}")
        with sqlite_errors_translated():
            return getattr(self._writer, operation)(**kwargs)

    def ping(self) -> dict[str, Any]:
        with sqlite_errors_translated():
            self._writer.check_writable()
        return {"db": str(self._writer.db_path), "schema_version": LATEST_VERSION}

    def close(self) -> None:
        """Checkpoint and close the database before the platform stops."""
        self._writer.close()
        self._lock.release()


def start_store_actor(settings: Settings) -> Any:
    actor: Any = (
        ray.remote(StoreActor)
        .options(
            name=STORE_ACTOR_NAME,
            namespace=RAY_NAMESPACE,
            max_restarts=-1,
            max_task_retries=0,
            num_cpus=0,
        )
        .remote(settings)
    )
    ray.get(actor.ping.remote())
    return actor


def _as_platform_error(error: Exception) -> Exception:
    if isinstance(error, RayTaskError) and isinstance(error.cause, CvpError):
        return error.cause
    if isinstance(error, RayActorError | GetTimeoutError):
        return StoreUnavailable(f"the store is not reachable right now ({type(error).__name__})")
    return error


class StoreClient:
    """How the rest of the platform talks to the store actor, from async or sync code.

    Store errors come back as the platform's own exceptions (``DuplicateRecord``...); a dead or
    restarting actor comes back as ``StoreUnavailable``.
    """

    def __init__(self, actor: Any | None = None) -> None:
        self._actor = actor

    @property
    def actor(self) -> Any:
        if self._actor is None:
            try:
                self._actor = ray.get_actor(STORE_ACTOR_NAME, namespace=RAY_NAMESPACE)
            except ValueError as error:
                raise StoreUnavailable("the store actor is not running") from error
        return self._actor

    async def call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return await self.actor.call.remote(operation, kwargs)
        except (RayTaskError, RayActorError) as error:
            raise _as_platform_error(error) from error

    async def ping(self) -> dict[str, Any]:
        try:
            result: dict[str, Any] = await self.actor.ping.remote()
        except (RayTaskError, RayActorError) as error:
            raise _as_platform_error(error) from error
        return result

    def call_sync(self, operation: str, timeout_s: float | None = 60.0, **kwargs: Any) -> Any:
        try:
            return ray.get(self.actor.call.remote(operation, kwargs), timeout=timeout_s)
        except (RayTaskError, RayActorError, GetTimeoutError) as error:
            raise _as_platform_error(error) from error
