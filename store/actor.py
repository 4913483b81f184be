"""The store actor: a thin Ray shell around :class:`store.writer.StoreWriter`.

It is named, lives in the platform's namespace, runs one method at a time (the single writer) and
is restarted by Ray if it dies. Calls are not retried: a write in flight when the actor died is
reported as ``StoreUnavailable`` rather than applied twice.

Every call carries the store secret, made when the platform starts Ray
(:func:`init_ray_with_store_secret`): Ray hands it to the platform's own worker processes through
the job's ``runtime_env``, so a driver that connects to the same Ray later (another job, whose
workers do not get it) is refused with ``PermissionDenied`` before anything is read or written.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import secrets
import time
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

from cvplatform import RAY_NAMESPACE
from cvplatform.config import Settings
from cvplatform.errors import CvpError, InvalidInput, PermissionDenied, StoreUnavailable
from cvplatform.jsonlog import configure_logging
from store.lock import DataDirLock
from store.operations import call_deadline, refuse_if_late
from store.schema import LATEST_VERSION
from store.writer import StoreWriter, sqlite_errors_translated

STORE_ACTOR_NAME = "cvp-store"
# How long a call whose caller gave up is still waited for: more than SQLite's busy timeout.
BEGUN_CALL_GRACE_S = 10.0
# Not a setting: made anew at every start; the platform's processes find it in their environment.
STORE_SECRET_ENV = "CVP_STORE_SECRET"  # noqa: S105 (the variable's name, not a secret)
log = logging.getLogger("cvp.store")


def init_ray_with_store_secret(**ray_init_arguments: Any) -> str:
    """``ray.init`` for the process that starts the platform, with a new store secret; returns it.

    The job's ``runtime_env`` gives the secret to every worker of this job (the store's callers:
    the API, the scheduler, the jobs), and this process takes it once Ray's own processes run:
    had it been in this environment before, the raylet would inherit it and pass it to the
    workers of any other driver.
    """
    secret = secrets.token_urlsafe(32)
    ray.init(**ray_init_arguments, runtime_env={"env_vars": {STORE_SECRET_ENV: secret}})
    os.environ[STORE_SECRET_ENV] = secret
    return secret


def platform_store_secret() -> str | None:
    """This process's store secret; None in a process that is not the platform's."""
    return os.environ.get(STORE_SECRET_ENV)


class StoreActor:
    def __init__(self, settings: Settings, secret: str) -> None:
        configure_logging(settings, "store")
        # Kept across restarts: Ray builds a restarted actor with the same arguments.
        self._secret = secret.encode()
        # A restarted actor may start while its dead predecessor's lock is being released.
        self._lock = DataDirLock(settings.data_dir).acquire(wait_s=15.0)
        self._writer = StoreWriter(settings.db_path, settings.store_busy_timeout_s)
        log.info("store ready", extra={"db": str(settings.db_path)})

    def _check_caller(self, secret: str | None, method: str) -> None:
        if secret is not None and hmac.compare_digest(secret.encode(), self._secret):
            return
        log.warning("store call refused: no or a wrong store secret", extra={"method": method})
        raise PermissionDenied(
            "the store takes calls from the platform's own processes only "
            f"({'no' if secret is None else 'a wrong'} store secret)"
        )

    def call(
        self,
        operation: str,
        kwargs: dict[str, Any],
        secret: str | None = None,
        deadline: float | None = None,
    ) -> Any:
        self._check_caller(secret, operation)
        refuse_if_late(deadline, time.time())  # its caller answered 503 already
        if operation not in StoreWriter.OPERATIONS:
            raise InvalidInput(f"the store has no operation {operation!r}")
        with sqlite_errors_translated():
            return getattr(self._writer, operation)(**kwargs)

    def ping(self, secret: str | None = None) -> dict[str, Any]:
        self._check_caller(secret, "ping")
        with sqlite_errors_translated():
            self._writer.check_writable()
        return {"db": str(self._writer.db_path), "schema_version": LATEST_VERSION}

    def close(self, secret: str | None = None) -> None:
        """Checkpoint and close the database before the platform stops."""
        self._check_caller(secret, "close")
        self._writer.close()
        self._lock.release()


def start_store_actor(settings: Settings) -> Any:
    """Start the store actor with the store secret this process took at ``ray.init``."""
    secret = platform_store_secret()
    if secret is None:
        raise RuntimeError(
            f"no store secret in this process: start Ray with init_ray_with_store_secret "
            f"(or set {STORE_SECRET_ENV} for this driver and its job's runtime_env)"
        )
    actor: Any = (
        ray.remote(StoreActor)
        .options(
            name=STORE_ACTOR_NAME,
            namespace=RAY_NAMESPACE,
            max_restarts=-1,
            max_task_retries=0,
            num_cpus=0,
        )
        .remote(settings, secret)
    )
    ray.get(actor.ping.remote(secret))
    return actor


def _as_platform_error(error: Exception) -> Exception:
    if isinstance(error, RayTaskError) and isinstance(error.cause, CvpError):
        return error.cause
    if isinstance(error, RayActorError | GetTimeoutError):
        return StoreUnavailable(f"the store is not reachable right now ({type(error).__name__})")
    return error


async def _answer_or_withdraw(reference: Any) -> Any:
    answer = asyncio.wrap_future(reference.future())
    try:
        return await asyncio.shield(answer)
    except asyncio.CancelledError:
        # Past the deadline the actor refuses the call at once when it reaches it, and one it
        # had begun ends within SQLite's busy timeout: either way the answer comes soon.
        try:
            return await asyncio.wait_for(answer, BEGUN_CALL_GRACE_S)
        except TimeoutError:
            raise asyncio.CancelledError from None


class StoreClient:
    """How the rest of the platform talks to the store actor, from async or sync code.

    Store errors come back as the platform's own exceptions (``DuplicateRecord``...); a dead or
    restarting actor comes back as ``StoreUnavailable``. Each call carries ``secret``, by default
    this process's store secret; without the right one the store answers ``PermissionDenied``.
    """

    def __init__(self, actor: Any | None = None, secret: str | None = None) -> None:
        self._actor = actor
        self._given_secret = secret

    @property
    def _secret(self) -> str | None:
        # Looked up per call: a client made before this process took the secret still works.
        return self._given_secret if self._given_secret is not None else platform_store_secret()

    @property
    def actor(self) -> Any:
        if self._actor is None:
            try:
                self._actor = ray.get_actor(STORE_ACTOR_NAME, namespace=RAY_NAMESPACE)
            except ValueError as error:
                raise StoreUnavailable("the store actor is not running") from error
        return self._actor

    async def call(self, operation: str, **kwargs: Any) -> Any:
        """Run one operation; cancelled (its caller's timeout), the call is withdrawn: the
        actor refuses it if it reaches it after ``call_deadline``, and one it had begun is
        waited for (up to :data:`BEGUN_CALL_GRACE_S`) and answered."""
        deadline = call_deadline.get()
        try:
            reference = self.actor.call.remote(operation, kwargs, self._secret, deadline)
            return await _answer_or_withdraw(reference)
        except (RayTaskError, RayActorError) as error:
            raise _as_platform_error(error) from error

    async def ping(self) -> dict[str, Any]:
        try:
            result: dict[str, Any] = await self.actor.ping.remote(self._secret)
        except (RayTaskError, RayActorError) as error:
            raise _as_platform_error(error) from error
        return result

    def call_sync(self, operation: str, timeout_s: float | None = 60.0, **kwargs: Any) -> Any:
        try:
            return ray.get(
                self.actor.call.remote(operation, kwargs, self._secret), timeout=timeout_s
            )
        except (RayTaskError, RayActorError, GetTimeoutError) as error:
            raise _as_platform_error(error) from error

    def close_store(self, timeout_s: float = 10.0) -> None:
        """Ask the store to checkpoint and close the database (the platform is stopping)."""
        ray.get(self.actor.close.remote(self._secret), timeout=timeout_s)
