"""The store's operations, typed: each is ``StoreWriter``'s own method, run wherever the store is.

Callers hold a store that runs an operation by name (the store actor's client; an in-process
writer in tests) and call it through these facades, which take the writer's own signature and
return type: ``await ops.create_user(username=..., ...)`` is checked like
``StoreWriter.create_user``. One line per operation; a writer method without a line here cannot be
called from outside the store.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

from cvplatform.errors import StoreUnavailable
from store.writer import StoreWriter

Params = ParamSpec("Params")
Result = TypeVar("Result")


class CallsByName(Protocol):
    """Runs a store operation by name (``store.actor.StoreClient`` in the platform).

    Cancelling the task that awaits ``call`` withdraws the operation if the store has not begun
    it; one already begun is awaited to its end and its outcome returned. A store in another
    process learns of the withdrawal from :data:`call_deadline`, sent with the call.
    """

    async def call(self, operation: str, **kwargs: Any) -> Any: ...


class CallsByNameSync(Protocol):
    def call_sync(self, operation: str, timeout_s: float | None = 60.0, **kwargs: Any) -> Any: ...


def _keywords(
    method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    # Operations travel by name with keyword arguments: bind positionals to their names here.
    bound = inspect.signature(method).bind(None, *args, **kwargs)
    return {name: value for name, value in bound.arguments.items() if name != "self"}


# When the caller of the store operation being made stops waiting for it (seconds since the
# epoch), if it does: a store that reaches the operation later refuses it (refuse_if_late).
call_deadline: ContextVar[float | None] = ContextVar("call_deadline", default=None)


def refuse_if_late(deadline: float | None, now: float) -> None:
    """Refuse to begin an operation whose caller stopped waiting at ``deadline``.

    Raises:
        StoreUnavailable: ``now`` is past the deadline; the operation is not run.
    """
    if deadline is not None and now > deadline:
        raise StoreUnavailable(
            f"the store reached this request {now - deadline:.1f} s after its caller stopped "
            "waiting; it was not run"
        )


class _Operation(Generic[Params, Result]):
    """One of the writer's operations, exposed on a facade."""

    def __init__(self, method: Callable[Concatenate[StoreWriter, Params], Result]) -> None:
        if method.__name__ not in StoreWriter.OPERATIONS:
            raise TypeError(f"{method.__name__} is not a store operation")
        self._method = method


class _Async(_Operation[Params, Result]):
    @overload
    def __get__(self, facade: None, owner: type) -> _Async[Params, Result]: ...

    @overload
    def __get__(
        self, facade: AsyncStoreOperations, owner: type
    ) -> Callable[Params, Awaitable[Result]]: ...

    def __get__(self, facade: AsyncStoreOperations | None, owner: type) -> Any:
        if facade is None:
            return self
        method = self._method

        async def run(*args: Params.args, **kwargs: Params.kwargs) -> Result:
            result: Result = await facade.call(method.__name__, _keywords(method, args, kwargs))
            return result

        return run


class _Sync(_Operation[Params, Result]):
    @overload
    def __get__(self, facade: None, owner: type) -> _Sync[Params, Result]: ...

    @overload
    def __get__(self, facade: StoreOperations, owner: type) -> Callable[Params, Result]: ...

    def __get__(self, facade: StoreOperations | None, owner: type) -> Any:
        if facade is None:
            return self
        method, store = self._method, facade.store

        def run(*args: Params.args, **kwargs: Params.kwargs) -> Result:
            result: Result = store.call_sync(method.__name__, **_keywords(method, args, kwargs))
            return result

        return run


class AsyncStoreOperations:
    """The operations the management API runs, awaited.

    Args:
        store: runs an operation by name.
        timeout_s: how long a call may wait for the store (None: as long as it takes). Past it,
            the call is withdrawn and ``StoreUnavailable`` raised: a call the store has not begun
            is dropped (the store's contract: cancelling the awaiting task withdraws it), so the
            503 means nothing was written; a call it has begun runs to its end and is answered
            (SQLite's own busy timeout bounds it).
    """

    def __init__(self, store: CallsByName, timeout_s: float | None = None) -> None:
        self.store = store
        self.timeout_s = timeout_s

    async def call(self, operation: str, kwargs: dict[str, Any]) -> Any:
        """Run one operation (the facades' methods come here).

        Raises:
            StoreUnavailable: the store did not take it within ``timeout_s``; nothing was written.
        """
        if self.timeout_s is None:
            return await self.store.call(operation, **kwargs)
        # Wall-clock time, not the platform's clock: the store, in another process, compares it.
        deadline = call_deadline.set(time.time() + self.timeout_s)
        try:
            return await asyncio.wait_for(self.store.call(operation, **kwargs), self.timeout_s)
        except TimeoutError:
            raise StoreUnavailable(
                f"the store did not take the request within {self.timeout_s:g} s "
                "(CVP_STORE_CALL_TIMEOUT_S); nothing was written: try again shortly"
            ) from None
        finally:
            call_deadline.reset(deadline)

    # accounts
    create_user = _Async(StoreWriter.create_user)
    delete_user = _Async(StoreWriter.delete_user)
    set_role = _Async(StoreWriter.set_role)
    set_password = _Async(StoreWriter.set_password)
    create_api_key = _Async(StoreWriter.create_api_key)
    revoke_api_key = _Async(StoreWriter.revoke_api_key)
    touch_api_key = _Async(StoreWriter.touch_api_key)
    create_session = _Async(StoreWriter.create_session)
    revoke_session = _Async(StoreWriter.revoke_session)
    append_audit = _Async(StoreWriter.append_audit)
    append_audit_batch = _Async(StoreWriter.append_audit_batch)
    purge_audit = _Async(StoreWriter.purge_audit)
    raise_alert = _Async(StoreWriter.raise_alert)
    # models, datasets, jobs
    create_model = _Async(StoreWriter.create_model)
    delete_model = _Async(StoreWriter.delete_model)
    create_dataset = _Async(StoreWriter.create_dataset)
    delete_dataset = _Async(StoreWriter.delete_dataset)
    start_preprocessing = _Async(StoreWriter.start_preprocessing)
    enqueue_job = _Async(StoreWriter.enqueue_job)
    claim_job = _Async(StoreWriter.claim_job)
    request_cancel = _Async(StoreWriter.request_cancel)
    finish_job = _Async(StoreWriter.finish_job)


class StoreOperations:
    """The operations background work runs (jobs, start-up, the CLI), called synchronously."""

    def __init__(self, store: CallsByNameSync) -> None:
        self.store = store

    create_user = _Sync(StoreWriter.create_user)
    delete_user = _Sync(StoreWriter.delete_user)
    set_role = _Sync(StoreWriter.set_role)
    append_audit = _Sync(StoreWriter.append_audit)
    create_model = _Sync(StoreWriter.create_model)
    set_model_status = _Sync(StoreWriter.set_model_status)
    finish_conversion = _Sync(StoreWriter.finish_conversion)
    create_dataset = _Sync(StoreWriter.create_dataset)
    set_dataset_status = _Sync(StoreWriter.set_dataset_status)
    finish_validation = _Sync(StoreWriter.finish_validation)
    start_preprocessing = _Sync(StoreWriter.start_preprocessing)
    finish_preprocessing = _Sync(StoreWriter.finish_preprocessing)
    fail_preprocessing = _Sync(StoreWriter.fail_preprocessing)
    set_job_device = _Sync(StoreWriter.set_job_device)
    record_job_progress = _Sync(StoreWriter.record_job_progress)
    record_benchmark_result = _Sync(StoreWriter.record_benchmark_result)
    create_report = _Sync(StoreWriter.create_report)
    finish_job = _Sync(StoreWriter.finish_job)
    # a GA search queues its trials' trainings, and cancels them with it
    enqueue_job = _Sync(StoreWriter.enqueue_job)
    request_cancel = _Sync(StoreWriter.request_cancel)
    fail_interrupted_jobs = _Sync(StoreWriter.fail_interrupted_jobs)
    raise_alert = _Sync(StoreWriter.raise_alert)
