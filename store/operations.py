"""The store's operations, typed: each is ``StoreWriter``'s own method, run wherever the store is.

Callers hold a store that runs an operation by name (the store actor's client; an in-process
writer in tests) and call it through these facades, which take the writer's own signature and
return type: ``await ops.create_user(username=..., ...)`` is checked like
``StoreWriter.create_user``. One line per operation; a writer method without a line here cannot be
called from outside the store.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

from store.writer import StoreWriter

Params = ParamSpec("Params")
Result = TypeVar("Result")


class CallsByName(Protocol):
    """Runs a store operation by name (``store.actor.StoreClient`` in the platform)."""

    async def call(self, operation: str, **kwargs: Any) -> Any: ...


class CallsByNameSync(Protocol):
    def call_sync(self, operation: str, timeout_s: float | None = 60.0, **kwargs: Any) -> Any: ...


def _keywords(
    method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    # Operations travel by name with keyword arguments: bind positionals to their names here.
    bound = inspect.signature(method).bind(None, *args, **kwargs)
    return {name: value for name, value in bound.arguments.items() if name != "self"}


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
        method, store = self._method, facade.store

        async def run(*args: Params.args, **kwargs: Params.kwargs) -> Result:
            result: Result = await store.call(method.__name__, **_keywords(method, args, kwargs))
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
    """The operations the management API runs, awaited."""

    def __init__(self, store: CallsByName) -> None:
        self.store = store

    # accounts
    create_user = _Async(StoreWriter.create_user)
    delete_user = _Async(StoreWriter.delete_user)
    set_role = _Async(StoreWriter.set_role)
    create_api_key = _Async(StoreWriter.create_api_key)
    revoke_api_key = _Async(StoreWriter.revoke_api_key)
    touch_api_key = _Async(StoreWriter.touch_api_key)
    create_session = _Async(StoreWriter.create_session)
    revoke_session = _Async(StoreWriter.revoke_session)
    reserve_login_attempt = _Async(StoreWriter.reserve_login_attempt)
    record_login_failure = _Async(StoreWriter.record_login_failure)
    clear_login_failures = _Async(StoreWriter.clear_login_failures)
    append_audit = _Async(StoreWriter.append_audit)
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
    finish_job = _Sync(StoreWriter.finish_job)
    fail_interrupted_jobs = _Sync(StoreWriter.fail_interrupted_jobs)
    raise_alert = _Sync(StoreWriter.raise_alert)
