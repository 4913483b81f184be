"""The audit trail keeps every row: through a store that refuses it (alert, retry from the
spool), an API process that dies (the spool is replayed), a flood of failed logins (one row per
address and minute) and the retention purge (with the injected clock)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from cvplatform.clock import to_iso
from cvplatform.config import Settings
from cvplatform.schemas import ComponentStatus, Readiness
from serve_apps.api.app import create_app
from serve_apps.api.state import PlatformState
from tests.api_harness import (
    Caller,
    InProcessApi,
    InProcessStore,
    RecordedBackgroundWork,
    SteppedClock,
    in_process_api,
)
from tests.helpers import unique

pytestmark = pytest.mark.anyio
SPOOL = "audit-spool.jsonl"


def _query(db_path: Path, sql: str, *params: Any) -> list[dict[str, Any]]:
    db = sqlite3.connect(db_path)
    db.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in db.execute(sql, params)]
    finally:
        db.close()


def _written(api_or_path: InProcessApi | Path, request_id: str) -> list[dict[str, Any]]:
    db_path = api_or_path if isinstance(api_or_path, Path) else api_or_path.settings.db_path
    return _query(db_path, "SELECT * FROM audit_log WHERE request_id = ?", request_id)


@contextmanager
def _audit_rows_refused(db_path: Path) -> Iterator[None]:
    """The database refuses new audit rows (as a failing disk would) while the block runs."""
    db = sqlite3.connect(db_path)
    try:
        db.execute(
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log"
            " BEGIN SELECT RAISE(ABORT, 'audit rows refused for the test'); END"
        )
        db.commit()
        yield
    finally:
        db.execute("DROP TRIGGER refuse_audit")
        db.commit()
        db.close()


async def _read_models(api: InProcessApi, headers: dict[str, str], count: int) -> list[str]:
    request_ids = []
    for _ in range(count):
        request_id = unique("read")
        answer = await api.http.get(
            "/api/v1/models", headers={**headers, "X-Request-ID": request_id}
        )
        assert answer.status_code == 200
        request_ids.append(request_id)
    return request_ids


async def test_a_refused_write_raises_an_alert_and_is_retried_from_the_spool(
    api: InProcessApi, admin: Caller
) -> None:
    spool = api.settings.data_dir / SPOOL
    with _audit_rows_refused(api.settings.db_path):
        request_ids = await _read_models(api, admin.headers, 5)
        assert not await api.state.audit.flush()
        assert not await api.state.audit.flush()  # still refused: no second warning
        api.clock.advance(61)
        assert not await api.state.audit.flush()  # refused for a minute: critical
        assert all(_written(api, request_id) == [] for request_id in request_ids)
        spooled = [json.loads(line)["request_id"] for line in spool.read_text().splitlines()]
        assert set(request_ids) <= set(spooled)
        alerts = _query(api.settings.db_path, "SELECT * FROM alerts ORDER BY id")
        assert [(alert["kind"], alert["severity"]) for alert in alerts] == [
            ("audit_write_failed", "warning"),
            ("audit_write_failed", "critical"),
        ]
        assert "audit rows refused for the test" in alerts[0]["message"]
        assert json.loads(alerts[0]["details"])["rows_waiting"] >= 5

    assert await api.state.audit.flush()
    assert all(len(_written(api, request_id)) == 1 for request_id in request_ids)
    assert not spool.exists()
    # The admin sees the alert through the API too.
    shown = await api.http.get("/api/v1/alerts", headers=admin.headers)
    assert {alert["kind"] for alert in shown.json()} == {"audit_write_failed"}


async def _not_probed() -> Readiness:
    up = ComponentStatus(ok=True, detail="not probed")
    return Readiness(status="ready", store=up, ray=up, serve=up, gpu=up, startup=up)


@contextmanager
def _restarted(settings: Settings) -> Iterator[tuple[PlatformState, InProcessStore]]:
    """A new API process over an existing data directory (its admin exists already)."""
    clock = SteppedClock()
    store = InProcessStore(settings.db_path, clock)
    state = PlatformState(
        settings=settings,
        store=store,
        jwt_secret=b"s" * 64,
        clock=clock,
        readiness=_not_probed,
        background=RecordedBackgroundWork(),
    )
    try:
        yield state, store
    finally:
        state.readers.close()
        store.close()


async def test_rows_a_dead_process_left_in_the_spool_are_written_at_the_next_start(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    async with in_process_api(data_dir) as first:
        request_ids = await _read_models(first, await first.admin(), 3)
        settings = first.settings
        # The process dies here: no lifespan ends, nothing is flushed.
    assert all(_written(settings.db_path, request_id) == [] for request_id in request_ids)

    with _restarted(settings) as (state, store):
        assert state.audit.waiting == 4  # the login and the three reads
        assert await state.audit.flush()
        assert store.calls["append_audit_batch"] == 1
    assert all(len(_written(settings.db_path, request_id)) == 1 for request_id in request_ids)
    assert not (data_dir / SPOOL).exists()


async def test_the_app_writes_rows_while_it_runs_and_what_is_left_when_it_stops(
    api: InProcessApi, admin: Caller
) -> None:
    app = create_app(api.state)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cvp.test") as http:
        async with app.router.lifespan_context(app):
            # 100 rows make a batch: the writer wakes at once rather than at its interval.
            request_ids = []
            for _ in range(100):
                request_id = unique("served")
                await http.get(
                    "/api/v1/datasets", headers={**admin.headers, "X-Request-ID": request_id}
                )
                request_ids.append(request_id)
            for _ in range(200):  # up to 10 s
                if _written(api, request_ids[-1]):
                    break
                await asyncio.sleep(0.05)
            assert _written(api, request_ids[-1]), "the writer wrote the batch while serving"
            last = unique("last")
            await http.get("/api/v1/datasets", headers={**admin.headers, "X-Request-ID": last})
        # Stopping writes what the last requests recorded.
        assert len(_written(api, last)) == 1
        assert api.state.audit.waiting == 0


@asynccontextmanager
async def _client_at(api: InProcessApi, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """The same API, reached from another client address."""
    transport = httpx.ASGITransport(app=create_app(api.state), client=(address, 40_000))
    async with httpx.AsyncClient(transport=transport, base_url="http://cvp.test") as http:
        yield http


async def _failed_logins(http: httpx.AsyncClient, count: int) -> set[int]:
    statuses = set()
    for _ in range(count):
        answer = await http.post(
            "/api/v1/auth/login", json={"username": "admin", "password": "not-the-password"}
        )
        statuses.add(answer.status_code)
    return statuses


async def test_failed_logins_from_one_address_are_one_row_per_minute(api: InProcessApi) -> None:
    flood_address = "203.0.113.7"
    await api.state.audit.flush()
    api.store.calls.clear()
    async with _client_at(api, flood_address) as flood:
        statuses = await _failed_logins(flood, 25)
        assert await api.state.audit.flush()  # the minute's row is written halfway through
        statuses |= await _failed_logins(flood, 25)
        assert await api.state.audit.flush()
    assert statuses <= {401, 429}
    assert api.store.calls["append_audit_batch"] == 2, "two flushes, not fifty writes"

    rows = _query(api.settings.db_path, "SELECT * FROM audit_log WHERE address = ?", flood_address)
    # One row per result (wrong password, throttled) of that address and minute, 50 in all.
    assert sorted(row["result"] for row in rows) == sorted(statuses)
    assert sum(row["count"] for row in rows) == 50
    assert {(row["action"], row["username"]) for row in rows} == {("login", "admin")}

    # The next minute starts a new row; another address has rows of its own.
    api.clock.advance(60)
    async with _client_at(api, flood_address) as flood:
        await _failed_logins(flood, 1)
    async with _client_at(api, "198.51.100.1") as other:
        await _failed_logins(other, 1)
    assert await api.state.audit.flush()
    counts = _query(
        api.settings.db_path,
        "SELECT address, count FROM audit_log WHERE action = 'login' AND result <> 200 ORDER BY id",
    )
    assert counts[len(rows) :] == [
        {"address": flood_address, "count": 1},
        {"address": "198.51.100.1", "count": 1},
    ]


def _old_row(at: str, request_id: str) -> dict[str, Any]:
    return {
        "at": at,
        "action": "list_models",
        "resource": "GET /api/v1/models",
        "result": 200,
        "request_id": request_id,
        "count": 1,
        "merge": False,
    }


async def test_rows_past_90_days_are_purged_once_a_day(api: InProcessApi) -> None:
    now = api.clock()
    rows = [
        _old_row(to_iso(now - timedelta(days=91)), "past"),
        _old_row(to_iso(now - timedelta(days=90) + timedelta(hours=2)), "nearly"),
        _old_row(to_iso(now - timedelta(days=1)), "recent"),
    ]
    api.store.run_sync("append_audit_batch", rows=rows)

    def kept() -> set[str]:
        found = _query(api.settings.db_path, "SELECT request_id FROM audit_log")
        return {row["request_id"] for row in found} & {"past", "nearly", "recent"}

    assert await api.state.audit.purge_if_due() == 1  # due at start
    assert kept() == {"nearly", "recent"}
    api.clock.advance(3 * 3600)  # "nearly" is now past 90 days, but a day has not passed
    assert await api.state.audit.purge_if_due() is None
    assert kept() == {"nearly", "recent"}
    api.clock.advance(21 * 3600)
    assert await api.state.audit.purge_if_due() == 1
    assert kept() == {"recent"}


async def test_the_retention_and_the_purge_interval_are_settings(tmp_path: Path) -> None:
    async with in_process_api(
        tmp_path / "data", audit_retention_days=1, audit_purge_interval_s=3600
    ) as api:
        now = api.clock()
        api.store.run_sync(
            "append_audit_batch",
            rows=[_old_row(to_iso(now - timedelta(hours=23, minutes=30)), "young")],
        )
        assert await api.state.audit.purge_if_due() == 0
        api.clock.advance(3600)
        assert await api.state.audit.purge_if_due() == 1
