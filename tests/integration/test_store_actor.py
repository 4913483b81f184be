"""The store actor is the only writer: concurrent writes all land, and a killed actor comes back
with every committed row; a request caught by the kill fails with 503. It takes calls from the
platform's own processes only: another driver on the same Ray is refused and writes nothing."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import ray

from cvplatform import RAY_NAMESPACE
from cvplatform.client import Client
from cvplatform.errors import PermissionDenied, StoreUnavailable
from store import queries
from store.actor import STORE_ACTOR_NAME, STORE_SECRET_ENV, StoreClient, platform_store_secret
from store.connections import open_reader
from tests.helpers import unique, wait_for
from tests.integration.conftest import USER_PASSWORD, LivePlatform


@ray.remote(num_cpus=0)
def _write_audit_rows(marker: str, batch: int, count: int) -> list[int]:
    """Fire ``count`` writes at once from this task, then wait for all of them."""
    actor = StoreClient().actor
    secret = platform_store_secret()  # this job's workers have it, as the platform's do
    pending = [
        actor.call.remote(
            "append_audit",
            {"action": marker, "resource": f"batch {batch}", "result": 200, "detail": str(i)},
            secret,
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


def _store_actor() -> Any:
    return ray.get_actor(STORE_ACTOR_NAME, namespace=RAY_NAMESPACE)


def test_200_concurrent_writes_survive_an_actor_kill(platform: LivePlatform) -> None:
    marker = unique("concurrency-")
    ids = ray.get([_write_audit_rows.remote(marker, batch, 50) for batch in range(4)])
    all_ids = [row_id for batch in ids for row_id in batch]
    assert len(set(all_ids)) == 200
    assert len(_rows_with(platform, marker)) == 200

    ray.kill(_store_actor(), no_restart=False)
    # Restarted with the same secret (Ray rebuilds it from the same arguments).
    secret = platform_store_secret()
    wait_for(lambda: ray.get(_store_actor().ping.remote(secret), timeout=10), timeout_s=60)
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


# Another driver on this Ray: connected with Ray's token, but not one of the platform's processes.
_FOREIGN_DRIVER = """
import json, os, sys
import ray
from cvplatform import RAY_NAMESPACE
from cvplatform.errors import CvpError
from store.actor import STORE_SECRET_ENV, StoreClient

ray.init(address=sys.argv[1], namespace=RAY_NAMESPACE, log_to_driver=False)
worker_secret = ray.get(ray.remote(num_cpus=0)(lambda: os.environ.get(STORE_SECRET_ENV)).remote())
row = {"action": sys.argv[2], "resource": "foreign", "result": 200}
try:
    StoreClient().call_sync("append_audit", **row)
    refusal = None
except CvpError as error:
    refusal = {"code": error.code, "message": error.message}
print(json.dumps({"worker_has_secret": worker_secret is not None, "refusal": refusal}))
"""


def test_only_the_platforms_processes_may_call_the_store(platform: LivePlatform) -> None:
    marker = unique("intruder-")
    row: dict[str, Any] = {"action": marker, "resource": "here", "result": 200}
    with pytest.raises(PermissionDenied, match="a wrong store secret"):
        StoreClient(secret="not-the-secret").call_sync("append_audit", **row)
    # A caller that does not know about the secret at all, and one that would stop the store.
    with pytest.raises(ray.exceptions.RayTaskError) as unsigned:
        ray.get(_store_actor().call.remote("append_audit", row), timeout=30)
    assert isinstance(unsigned.value.cause, PermissionDenied)
    with pytest.raises(ray.exceptions.RayTaskError):
        ray.get(_store_actor().close.remote(), timeout=30)

    env = {name: value for name, value in os.environ.items() if name != STORE_SECRET_ENV}
    address = ray.get_runtime_context().gcs_address
    foreign = subprocess.run(
        [sys.executable, "-c", _FOREIGN_DRIVER, address, marker],
        env=env,
        cwd=platform.settings.data_dir.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert foreign.returncode == 0, foreign.stderr[-3000:]
    report = json.loads(foreign.stdout.strip().splitlines()[-1])
    assert report == {
        "worker_has_secret": False,  # another job's workers do not get it from Ray
        "refusal": {
            "code": "forbidden",
            "message": "the store takes calls from the platform's own processes only "
            "(no store secret)",
        },
    }
    assert _rows_with(platform, marker) == []
    # The platform's own calls still land, and the refused close() closed nothing.
    StoreClient().call_sync("append_audit", **{**row, "resource": "platform"})
    assert [entry["resource"] for entry in _rows_with(platform, marker)] == ["platform"]
