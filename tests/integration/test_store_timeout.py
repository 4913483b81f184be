"""The API's store timeout against the real store actor on Ray: a call still queued when its
caller gives up is never run (503, nothing written); one the actor had begun runs to its end and
is answered. The slow store is SQLite's write lock, held by the test."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray

from cvplatform.config import Settings
from cvplatform.errors import StoreUnavailable
from store import queries
from store.actor import StoreActor, StoreClient, platform_store_secret
from store.connections import open_reader
from store.operations import AsyncStoreOperations

TIMEOUT_S = 0.5
LOCK_HELD_S = 1.5


@pytest.fixture
def store_actor(ray_session: None, tmp_path: Path) -> Iterator[tuple[Settings, Any, str]]:
    settings = Settings(data_dir=tmp_path / "data", store_busy_timeout_s=10)
    secret = platform_store_secret()
    assert secret is not None
    remote: Any = ray.remote(StoreActor)
    actor = remote.options(num_cpus=0, max_restarts=0).remote(settings, secret)
    ray.get(actor.ping.remote(secret))
    yield settings, actor, secret
    ray.get(actor.close.remote(secret))
    ray.kill(actor)


def _resources(settings: Settings) -> list[str]:
    reader = open_reader(settings.db_path)
    try:
        entries = queries.audit_entries(reader, 100, 0)
        return sorted(str(entry["resource"]) for entry in entries if entry["action"] == "probe")
    finally:
        reader.conn.close()


def _row(resource: str) -> dict[str, Any]:
    return {"action": "probe", "resource": resource, "result": 200}


async def _with_write_lock_held(settings: Settings, calls: Any) -> Any:
    holder = sqlite3.connect(settings.db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # every write waits for this one
    try:
        running = asyncio.ensure_future(calls())
        await asyncio.sleep(LOCK_HELD_S)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    return await running


def test_a_queued_call_whose_caller_gave_up_is_never_run(
    store_actor: tuple[Settings, Any, str],
) -> None:
    settings, actor, secret = store_actor
    ops = AsyncStoreOperations(StoreClient(actor, secret), timeout_s=TIMEOUT_S)

    async def calls() -> tuple[object, BaseException | None]:
        ahead = actor.call.remote("append_audit", _row("ahead"), secret)  # begun, waits
        await asyncio.sleep(0.2)
        try:
            await ops.append_audit(**_row("withdrawn"))
        except StoreUnavailable as error:
            return await ahead, error
        return await ahead, None

    _, refused = asyncio.run(_with_write_lock_held(settings, calls))
    assert isinstance(refused, StoreUnavailable)
    assert _resources(settings) == ["ahead"]


def test_a_call_the_store_had_begun_is_answered(store_actor: tuple[Settings, Any, str]) -> None:
    settings, actor, secret = store_actor
    ops = AsyncStoreOperations(StoreClient(actor, secret), timeout_s=TIMEOUT_S)

    async def calls() -> object:
        return await ops.append_audit(**_row("begun"))

    row_id = asyncio.run(_with_write_lock_held(settings, calls))
    assert isinstance(row_id, int)
    assert _resources(settings) == ["begun"]
