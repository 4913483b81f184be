"""The store actor is the only writer: concurrent writes all land, and a killed actor comes back
with every committed row; a request caught by the kill fails with 503."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import ray

from cvplatform import RAY_NAMESPACE
from cvplatform.client import Client
from cvplatform.errors import StoreUnavailable
from store import queries
from store.actor import STORE_ACTOR_NAME, StoreClient
from store.connections import open_reader
from tests.helpers import unique, wait_for
from tests.integration.conftest import USER_PASSWORD, LivePlatform


@ray.remote(num_cpus=0)
def _write_audit_rows(marker: str, batch: int, count: int) -> list[int]:
    """Fire ``count`` writes at once from this task, then wait for all of them."""
    actor = StoreClient().actor
    pending = [
        actor.call.remote(
            "append_audit",
            {"action": marker, "resource": f"batch {batch}", "result": 200, "detail": str(i)},
        )
        for i in range(count)
    ]
    return list(ray.get(pending))


def _rows_with(platform: LivePlatform, marker: str) -> list[dict[str, object]]:
    reader = open_reader(platform.settings.db_path)
    try:
        return list(reader.query("SELECT * FROM audit_log WHERE action = ?", [marker]))
    finally:
        reader.conn.close()


def _store_actor() -> object:
    return ray.get_actor(STORE_ACTOR_NAME, namespace=RAY_NAMESPACE)


def test_200_concurrent_writes_survive_an_actor_kill(platform: LivePlatform) -> None:
    marker = unique("concurrency-")
    ids = ray.get([_write_audit_rows.remote(marker, batch, 50) for batch in range(4)])
    all_ids = [row_id for batch in ids for row_id in batch]
    assert len(set(all_ids)) == 200
    assert len(_rows_with(platform, marker)) == 200

    ray.kill(_store_actor(), no_restart=False)
    wait_for(lambda: ray.get(_store_actor().ping.remote(), timeout=10), timeout_s=60)
    rows = _rows_with(platform, marker)
    assert sorted(row["id"] for row in rows) == sorted(all_ids)  # type: ignore[type-var]
    # The API process learns of the restart on its own; until then its writes may answer 503.
    wait_for(lambda: platform.admin().close(), timeout_s=60)


def test_store_killed_mid_request_is_503_and_loses_nothing(
    platform: LivePlatform, admin: Client
) -> None:
    committed = admin.create_user(unique("before-kill"), USER_PASSWORD, "viewer")
    doomed_name = unique("in-flight")
    # Hold SQLite's write lock so that the store actor's next write waits inside SQLite.
    blocker = sqlite3.connect(platform.settings.db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            in_flight = pool.submit(admin.create_user, doomed_name, USER_PASSWORD, "viewer")
            time.sleep(2.5)
            assert not in_flight.done(), "the write should be waiting for the lock"
            ray.kill(_store_actor(), no_restart=False)
            with pytest.raises(StoreUnavailable) as failure:
                in_flight.result(timeout=30)
        assert failure.value.http_status == 503  # type: ignore[attr-defined]
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()

    after = wait_for(lambda: admin.create_user(unique("after-kill"), USER_PASSWORD, "viewer"))
    names = {user.username for user in admin.list_users()}
    assert {committed.username, after.username} <= names
    assert doomed_name not in names
    reader = open_reader(platform.settings.db_path)
    assert reader.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert queries.user_by_id(reader, committed.id) is not None
    reader.conn.close()
